"""Which rules, through which views, an event of a (name, collections, written mode) feeds.

A rule selects by name and collections (:meth:`Rule.selects`) and maps each written mode to the
views it evaluates (:meth:`Rule.views`). The answer depends on the configuration only, so it is
cached; each cache holds at most :data:`ROUTE_CACHE_LIMIT` keys and starts afresh when full (a run
writing ever new names cannot grow it without bound). Its bytes are counted as entries come in.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from trainsentry.consumers.state.sizing import allocated, deep_size
from trainsentry.rules.base import Observation, Rule, View

ROUTE_CACHE_LIMIT = 100_000  # distinct (name, collections, mode) keys before the cache restarts

# Who takes a value in one view: (rule index, rule, how its states are keyed, how one is made).
# The keying is None for a rule without state, True for a state per series (the default key, known
# without a call), else the rule's state_key.
Member = tuple[int, Rule, Callable[[Observation], Hashable] | bool | None, Callable[[], Any]]
# For one (name, collections, written mode): each view it feeds, the rules that take it there,
# and the bit set of the indices of those that keep no state (that a rule with state has taken a
# value of a trial shows as its table in the trial).
Routes = tuple[tuple[View, tuple[Member, ...], int], ...]


class Router:
    """The routes of events, cached: ``cache.get((name, collections, mode))`` or :meth:`route`."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._keyed = tuple(_keying(rule) for rule in self.rules)
        self._makers = tuple(rule.new_state for rule in self.rules)  # bound once, shared by routes
        self._selects: dict[tuple[str, tuple[str, ...]], tuple[bool, ...]] = {}
        self.cache: dict[tuple[str, tuple[str, ...], str], Routes] = {}  # cleared, never replaced
        self._entry_bytes = 0
        # Rules and views belong to the configuration: a cached route refers to them, never holds them.
        self._shared = frozenset(
            [id(rule) for rule in self.rules]
            + [id(view) for rule in self.rules for views in rule.views_by_mode.values() for view in views])

    def route(self, name: str, collections: tuple[str, ...], mode: str) -> Routes:
        """The routes of (``name``, ``collections``, ``mode``), computed and cached."""
        selects = self._selects.get((name, collections))
        if selects is None:
            if len(self._selects) >= ROUTE_CACHE_LIMIT:
                self._restart()
            selects = tuple(_selects(rule, name, collections) for rule in self.rules)
            self._selects[(name, collections)] = selects
            self._entry_bytes += deep_size((name, collections)) + deep_size(selects)
        by_view: dict[View, list[int]] = {}
        for index, rule in enumerate(self.rules):
            if selects[index]:
                for view in rule.views(mode):
                    by_view.setdefault(view, []).append(index)
        routes = tuple((view, tuple((i, self.rules[i], self._keyed[i], self._makers[i])
                                    for i in indices),
                        sum(1 << i for i in indices if self._keyed[i] is None))
                       for view, indices in by_view.items())
        if len(self.cache) >= ROUTE_CACHE_LIMIT:
            self._restart()
        key = (name, collections, mode)
        self.cache[key] = routes
        self._entry_bytes += deep_size(key) + deep_size(routes, self._shared)
        return routes

    def cache_bytes(self) -> int:
        """Bytes held by the two caches."""
        return (self._entry_bytes + allocated(sys.getsizeof(self._selects))
                + allocated(sys.getsizeof(self.cache)))

    def _restart(self) -> None:
        self._selects.clear()
        self.cache.clear()
        self._entry_bytes = 0


def _selects(rule: Rule, name: str, collections: tuple[str, ...]) -> bool:
    """Whether ``rule`` selects the tensor; a rule whose ``selects`` raises selects nothing of it
    (counted as skipped: a bug in a user's rule must not cost the event its other verdicts)."""
    try:
        return bool(rule.selects(name, collections))
    except Exception as exc:
        rule.skip(f"selects() raised {type(exc).__name__}")
        return False


def _keying(rule: Rule) -> Callable[[Observation], Hashable] | bool | None:
    """How ``rule``'s states are keyed (see :data:`Member`)."""
    if rule.new_state() is None:
        return None
    return True if type(rule).state_key is Rule.state_key else rule.state_key
