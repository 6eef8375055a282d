"""One value per trial in one slot of a store, seen as a mapping ``trial -> value``.

Components written against a plain dict of trials (the objective tracker, the metric extractor)
take this view instead, so their per-trial values live in the store: forgotten with the trial,
sized and snapshotted with it. The value sits at (trial, slot, ``None``). Iteration follows the
store's order of trials and visits every trial held: for reports and end of input, not per event.

>>> from trainsentry.consumers.state.memory import MemoryStore
>>> store = MemoryStore()
>>> best = TrialSlotView(store, "best")
>>> best["run-1"] = 0.5
>>> best.get("run-2"), dict(best), store.trials()
(None, {'run-1': 0.5}, ['run-1'])
>>> store.drop("run-1"); "run-1" in best
False
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, MutableMapping
from typing import Any

from .store import StateStore

_MISSING = object()


class TrialSlotView(MutableMapping[str, Any]):
    """``trial -> value`` for the values at (trial, ``slot``, ``None``) of ``store``."""

    def __init__(self, store: StateStore, slot: Hashable) -> None:
        self._store = store
        self._slot = slot

    def __getitem__(self, trial: str) -> Any:
        state = self._store.find(trial)
        table = None if state is None else state.tables.get(self._slot)
        value = _MISSING if table is None else table.entries.get(None, _MISSING)
        if value is _MISSING:
            raise KeyError(trial)
        return value

    def get(self, trial: str, default: Any = None) -> Any:
        state = self._store.find(trial)
        table = None if state is None else state.tables.get(self._slot)
        return default if table is None else table.entries.get(None, default)

    def __setitem__(self, trial: str, value: Any) -> None:
        self._store.trial(trial).table(self._slot).put(None, value)

    def __delitem__(self, trial: str) -> None:
        state = self._store.find(trial)
        if state is None or self._slot not in state.tables:
            raise KeyError(trial)
        state.drop(self._slot)

    def __iter__(self) -> Iterator[str]:
        for trial in self._store.trials():
            state = self._store.find(trial)
            if state is not None and self._slot in state.tables:
                yield trial

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, trial: object) -> bool:
        state = self._store.find(trial) if isinstance(trial, str) else None
        return state is not None and self._slot in state.tables
