"""Which trials the engine holds, within its caps, and which it lets go first.

Trials are kept in order of activity, least recently active first (an ``OrderedDict``: moving
one to the end and finding the first cost the same whatever the number of trials). Opening a
trial beyond ``max_trials`` lets the least recently active one go; so does state beyond
``max_state_bytes``, checked as each batch begins (:meth:`TrialCapacity.fit_bytes`), until it
fits again. A trial let go loses everything held for it, exactly as one released after its end
or its idle time; each is counted by reason, said once, and listed for whoever runs the engine
(:meth:`TrialCapacity.drain_evicted`). A trial that comes back starts afresh.

Within a trial, a new series (or log stream) beyond ``max_series_per_trial`` is refused: its
events are counted and ignored, and the trial is told once. Its other series go on.

>>> from trainsentry.consumers.state import MemoryStore
>>> from .notices import Notices
>>> from .stats import EngineStats
>>> from .limits import EngineLimits
>>> store = MemoryStore()
>>> capacity = TrialCapacity(store, EngineLimits(max_trials=2), EngineStats(), Notices())
>>> for trial in ("a", "b"):
...     _ = store.trial(trial); capacity.opened(trial)
>>> capacity.touch("a"); _ = store.trial("c"); capacity.opened("c")
>>> store.trials(), capacity.drain_evicted()
(['a', 'c'], ['b'])
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from trainsentry.consumers.state import StateStore, TrialState
from trainsentry.protocol.rendering import brief

from .limits import EngineLimits
from .notices import Notices
from .stats import EngineStats


class TrialCapacity:
    """Keeps the engine's trials within their caps (see the module's docstring)."""

    def __init__(self, store: StateStore, limits: EngineLimits, stats: EngineStats,
                 notices: Notices) -> None:
        self._store = store
        self.limits = limits
        self.max_series = limits.max_series_per_trial
        self._stats = stats
        self._notices = notices
        self._recent: OrderedDict[str, None] = OrderedDict()  # least recently active first
        self._evicted: list[str] = []

    def touch(self, trial: str) -> None:
        """``trial`` is active now (a no-op for a trial not held)."""
        recent = self._recent
        if trial in recent:
            recent.move_to_end(trial)
        elif trial in self._store:  # restored from a snapshot, or made by a view
            recent[trial] = None

    def opened(self, trial: str) -> None:
        """``trial`` was just opened: the most recent; over ``max_trials``, the oldest go."""
        recent = self._recent
        recent[trial] = None
        recent.move_to_end(trial)
        while len(recent) > self.limits.max_trials:
            self._evict(next(iter(recent)), "trials", f"the least recently active of more than "
                        f"{self.limits.max_trials} trials held (max_trials)")

    def restored(self, trials: Iterable[str]) -> None:
        """Trials loaded from a snapshot: held, and active now."""
        for trial in trials:
            self.opened(trial)

    def forgot(self, trial: str) -> None:
        """``trial`` was released by whoever runs the engine."""
        self._recent.pop(trial, None)

    def fit_bytes(self) -> None:
        """Let the least recently active trials go while the state exceeds ``max_state_bytes``."""
        limit = self.limits.max_state_bytes
        store, recent = self._store, self._recent
        while len(recent) > 1 and store.state_bytes() > limit:
            self._evict(next(iter(recent)), "bytes", f"the least recently active trial while the "
                        f"state held more than {limit} bytes (max_state_bytes)")

    def refuse_series(self, state: TrialState, trial: str, what: str) -> None:
        """A new series (or log stream) of ``trial`` is beyond the cap: count it, say so once."""
        self._stats.refused_series += 1
        self._notices.about(state, "series cap", (
            f"trial {brief(trial)}: holds {self.max_series} series and log streams "
            f"(max_series_per_trial); the events of new ones ({what} first) are counted and "
            f"ignored, its other series go on"))

    def drain_evicted(self) -> list[str]:
        """Trials let go since the last call and not held again since, in order, each once."""
        evicted, self._evicted = self._evicted, []
        store = self._store
        return list(dict.fromkeys(trial for trial in evicted if trial not in store))

    def _evict(self, trial: str, reason: str, why: str) -> None:
        del self._recent[trial]
        self._store.drop(trial)
        evicted = self._stats.evicted_trials
        evicted[reason] = evicted.get(reason, 0) + 1
        self._evicted.append(trial)
        self._notices.add(f"trial {brief(trial)}: state released, {why}; its rules start afresh "
                          f"if it sends again")
