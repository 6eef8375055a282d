"""The interface of the engine's keyed state: every value is addressed by (trial, slot, key).

- **trial**: a trial id. Forgetting a trial drops its whole prefix (:meth:`StateStore.drop`).
- **slot**: who owns the values inside the trial: a rule (its index in the configuration) or one
  of the engine's own ledgers (the newest step of each series, the alerted steps...). Dropping one
  slot of a trial releases e.g. a rule stopped by ``stop_at_first`` (:meth:`TrialState.drop`).
- **key**: inside a slot, for example a series (worker, view, tensor name).

Besides its slots, a trial has one *head*: a value of the trial's own (the engine keeps its
record of the trial there), read as ``state.head`` and set with :meth:`TrialState.set_head`.

A :class:`Table` holds the values of one (trial, slot). Its owner reads ``table.entries`` (the live
mapping) and changes it only through :meth:`Table.put`, :meth:`Table.edit` (a value to change in
place), :meth:`Table.touch` (after changing a value in place) and :meth:`Table.delete`, so that
the store knows which entries to size again. A *fixed* table holds values whose size never
changes after they are added (ints, floats): its owner may also assign a new value to an existing
key directly (``table.entries[key] = value``); fixed tables only grow, until their trial or slot
is dropped.

The size of everything held is accounted by the store (:meth:`StateStore.state_bytes`), and the
values of chosen trials can be dumped and loaded again (:meth:`StateStore.dump`,
:meth:`StateStore.load`), which engine snapshots are made of.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from typing import Any

# What dump() returns and load() takes: per trial its head and, per slot, whether the table is
# fixed and its (key, value) pairs.
TableDump = tuple[Hashable, bool, list[tuple[Hashable, Any]]]
TrialDump = tuple[str, Any, list[TableDump]]


class Table(ABC):
    """The values of one (trial, slot), by key."""

    __slots__ = ()

    entries: Mapping[Hashable, Any]  # the live mapping: read it, change it through the methods
    fixed: bool                       # values keep the size they were added with
    # True while a touch of any key would change nothing (the table will be sized again anyway):
    # a hot path may then change values in place without calling touch() or edit().
    marked: bool

    @abstractmethod
    def put(self, key: Hashable, value: Any) -> None:
        """Set the value of ``key`` (its size is taken again)."""

    @abstractmethod
    def touch(self, key: Hashable) -> None:
        """Say that the value of ``key`` was changed in place (its size is taken again)."""

    @abstractmethod
    def edit(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The value of ``key``, which the caller changes in place now (its size is taken again).

        A missing (or ``None``) value is made by ``make()`` first. One call for the commonest
        update: a state fetched, created if new, and changed.
        """

    @abstractmethod
    def delete(self, key: Hashable) -> None:
        """Remove ``key`` if present (not in a fixed table)."""


class TrialState(ABC):
    """Every table of one trial, by slot, and the trial's head."""

    __slots__ = ()

    tables: Mapping[Hashable, Table]  # the live mapping: read it, change it through the methods
    head: Any                         # the trial's own value (None until set)

    @abstractmethod
    def set_head(self, value: Any) -> None:
        """Make ``value`` the trial's head (its size is taken again)."""

    @abstractmethod
    def touch_head(self) -> None:
        """Say that the head was changed in place (its size is taken again)."""

    @abstractmethod
    def table(self, slot: Hashable, fixed: bool = False) -> Table:
        """The table of ``slot``, created empty (fixed or not) when the trial has none yet."""

    @abstractmethod
    def drop(self, slot: Hashable) -> None:
        """Release the table of ``slot`` and everything in it, if present."""


class StateStore(ABC):
    """Every trial's state; sized in one place, dumped and loaded by trial."""

    @abstractmethod
    def trial(self, trial: str) -> TrialState:
        """The state of ``trial``, created empty when it is not held yet."""

    @abstractmethod
    def find(self, trial: str) -> TrialState | None:
        """The state of ``trial``, or ``None`` when it is not held."""

    @abstractmethod
    def drop(self, trial: str) -> None:
        """Release everything held for ``trial`` (nothing happens for a trial not held)."""

    @abstractmethod
    def trials(self) -> list[str]:
        """The trials held, in the order they were first held."""

    @abstractmethod
    def __contains__(self, trial: object) -> bool: ...

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def state_bytes(self) -> int:
        """Bytes held by the store, from the sizes of what changed since the last call.

        Only the entries marked since the last call are sized again, so a call costs what changed,
        not what is held; callers ask at most about once a second.
        """

    @abstractmethod
    def dump(self, trials: Iterable[str]) -> list[TrialDump]:
        """The tables of the held ones of ``trials``: the live values, to be encoded at once."""

    @abstractmethod
    def load(self, dumped: Iterable[TrialDump]) -> list[str]:
        """Hold the dumped trials, replacing what is held for them; return their ids."""

    def __iter__(self) -> Iterator[str]:
        return iter(self.trials())
