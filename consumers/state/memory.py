"""The in-memory backend of :class:`StateStore`: nested dicts, sized incrementally.

Sizing follows what changed. A table whose entry is put, touched or deleted is *pending*; when the
size is asked (:meth:`MemoryStore.state_bytes`), each pending table sizes what changed with
:func:`deep_size` and the total moves by the difference. A table of at most :data:`SMALL_TABLE`
entries is sized whole when it changed (it remembers neither keys nor sizes); a larger one
remembers the changed keys and each entry's size, and sizes again only those keys; a fixed table
sizes an entry once, when it is added. A trial's own objects (its record, its dict of tables, its
id, its head) are sized again when a table came or went or the head changed. Nothing is ever
scanned whole: a call costs what changed since the previous one.

>>> store = MemoryStore()
>>> table = store.trial("run-1").table("windows")
>>> table.put(("0", "TRAIN", "loss"), [1.0, 2.0])
>>> held = store.state_bytes()
>>> table.entries[("0", "TRAIN", "loss")].append(3.0); table.touch(("0", "TRAIN", "loss"))
>>> store.state_bytes() > held, store.trials()
(True, ['run-1'])
>>> store.drop("run-1"); store.state_bytes() < held, store.trials()
(True, [])
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from .sizing import allocated, deep_size, walk_size
from .store import StateStore, Table, TrialDump, TrialState

SMALL_TABLE = 8  # entries up to which a changed table is sized whole (no size kept per entry)

_MISSING = object()
_getsizeof = sys.getsizeof


def entry_size(key: Hashable, value: Any, shared: frozenset[int] = frozenset()) -> int:
    """Bytes of one entry: its key and its value (the dict's slot is in the table's own size)."""
    return walk_size([key, value], shared)


def fixed_entry_size(key: Hashable, value: Any, shared: frozenset[int] = frozenset()) -> int:
    """Bytes of one entry of a fixed table: an int value counts as a full int object.

    A fixed entry is sized once, when added, typically at a small first value (a step 0) that
    the interpreter caches; the values that replace it soon are objects of their own.
    """
    if type(value) is int:
        return deep_size(key, shared) + _INT_BYTES
    return walk_size([key, value], shared)


class MemoryTable(Table):
    """The values of one (trial, slot) in a dict, with what is needed to size them incrementally.

    A table is *whole* while it holds at most :data:`SMALL_TABLE` entries: a change only marks it,
    and it is sized whole. Past that it is *keyed*: the changed keys are remembered and only they
    are sized again (a fixed table sizes its new keys; another keeps each entry's size).
    """

    marked: bool  # True while touching any key changes nothing (a marked whole table)

    __slots__ = ("entries", "fixed", "keyed", "marked", "sizes", "dirty", "bytes", "entry_bytes",
                 "_pending")

    def __init__(self, fixed: bool, pending: set[MemoryTable]) -> None:
        self.entries: dict[Hashable, Any] = {}
        self.fixed = fixed
        self.keyed = False
        self.marked = True   # a whole table changed since last sized (a new one: its containers)
        self.sizes: dict[Hashable, int] | None = None  # per entry, in a keyed table not fixed
        self.dirty: set[Hashable] | None = None         # keys changed since last sized (keyed)
        self.bytes = 0                                  # as last sized: containers and entries
        self.entry_bytes = 0
        self._pending = pending
        pending.add(self)

    def put(self, key: Hashable, value: Any) -> None:
        entries = self.entries
        if self.fixed and key in entries:  # same size as before: nothing to size again
            entries[key] = value
            return
        entries[key] = value
        self.touch(key)

    def touch(self, key: Hashable) -> None:
        if self.marked:
            return
        if self.keyed:
            dirty = self.dirty
            if dirty is None:
                dirty = self.dirty = set()
                self._pending.add(self)
            dirty.add(key)
        else:
            self.marked = True
            self._pending.add(self)

    def edit(self, key: Hashable, make: Callable[[], Any]) -> Any:
        value = self.entries.get(key)
        if value is None:
            value = self.entries[key] = make()
        if not self.marked:
            self.touch(key)
        return value

    def delete(self, key: Hashable) -> None:
        if self.fixed:
            raise TypeError("a fixed table only grows: drop its slot or its trial instead")
        if self.entries.pop(key, _MISSING) is not _MISSING:
            self.touch(key)

    def settle(self, shared: frozenset[int]) -> int:
        """Size what changed since the last call; return how much this table's bytes moved.

        ``shared``: ids of objects held elsewhere, that count nothing (see :func:`deep_size`).
        """
        dirty, self.dirty, self.marked = self.dirty, None, False
        entries = self.entries
        size = fixed_entry_size if self.fixed else entry_size
        if not self.keyed:
            if len(entries) <= SMALL_TABLE:
                entry_bytes = sum(size(key, value, shared) for key, value in entries.items())
            else:  # outgrew SMALL_TABLE: sized entry by entry once, then only what changes
                self.keyed = True
                sizes = {key: size(key, value, shared) for key, value in entries.items()}
                entry_bytes = sum(sizes.values())
                self.sizes = None if self.fixed else sizes
        elif self.fixed:
            entry_bytes = self.entry_bytes + sum(size(key, entries[key], shared) for key in dirty or ())
        else:
            entry_bytes, sizes = self.entry_bytes, self.sizes
            for key in dirty or ():
                entry_bytes -= sizes.pop(key, 0)
                value = entries.get(key, _MISSING)
                if value is not _MISSING:
                    entry_bytes += (known := size(key, value, shared))
                    sizes[key] = known
        own = _TABLE_BYTES + allocated(_getsizeof(entries))
        if self.sizes is not None:
            own += allocated(_getsizeof(self.sizes)) + _INT_BYTES * len(self.sizes)
        before = self.bytes
        self.entry_bytes = entry_bytes
        self.bytes = entry_bytes + own
        return self.bytes - before

    def release(self) -> int:
        """Stop accounting this table (it is being dropped); return the bytes it was counted for."""
        self._pending.discard(self)
        self.dirty, self.marked = None, True  # never pending again
        return self.bytes


class MemoryTrial(TrialState):
    """The tables of one trial, by slot, and its head."""

    __slots__ = ("tables", "head", "own", "_trial", "_store")

    def __init__(self, trial: str, store: MemoryStore) -> None:
        self.tables: dict[Hashable, MemoryTable] = {}
        self.head: Any = None
        self.own = 0  # bytes of this record, its dict of tables, the trial id and the head
        self._trial = trial
        self._store = store

    def set_head(self, value: Any) -> None:
        self.head = value
        self._store.reshaped.add(self)

    def touch_head(self) -> None:
        self._store.reshaped.add(self)

    def table(self, slot: Hashable, fixed: bool = False) -> MemoryTable:
        table = self.tables.get(slot)
        if table is None:
            table = self.tables[slot] = MemoryTable(fixed, self._store.pending)
            self._store.reshaped.add(self)
        return table

    def drop(self, slot: Hashable) -> None:
        table = self.tables.pop(slot, None)
        if table is not None:
            self._store.held -= table.release()
            self._store.reshaped.add(self)

    def settle(self, shared: frozenset[int]) -> int:
        """Size this record, its dict of tables, the trial id and the head again; the change."""
        own = (_TRIAL_BYTES + allocated(_getsizeof(self.tables)) + deep_size(self._trial)
               + deep_size(self.head, shared))
        before, self.own = self.own, own
        return own - before


class MemoryStore(StateStore):
    """Trials in a dict, each a dict of tables; see the module's docstring for the sizing."""

    def __init__(self, shared: Iterable[object] = ()) -> None:
        """``shared``: objects that values refer to but do not hold (constants such as mode
        names): they count nothing in the sizes."""
        self._kept_shared = tuple(shared)  # alive as long as the store: their ids stay theirs
        self._shared = frozenset(map(id, self._kept_shared))
        self._trials: dict[str, MemoryTrial] = {}
        self.pending: set[MemoryTable] = set()  # tables changed since the size was last asked
        self.reshaped: set[MemoryTrial] = set() # trials that gained or lost a table since then
        self.held = 0                           # bytes of the trials, as last sized
        # The engine asks once per event: the dict's own lookup, without a method call around it.
        self.find = self._trials.get

    def trial(self, trial: str) -> MemoryTrial:
        state = self._trials.get(trial)
        if state is None:
            state = self._trials[trial] = MemoryTrial(trial, self)
            self.reshaped.add(state)
        return state

    def find(self, trial: str) -> MemoryTrial | None:  # replaced per instance (see __init__)
        return self._trials.get(trial)

    def drop(self, trial: str) -> None:
        state = self._trials.pop(trial, None)
        if state is not None:
            for table in state.tables.values():
                self.held -= table.release()
            self.reshaped.discard(state)
            self.held -= state.own
            if not self._trials:
                self._trials.clear()  # an emptied dict keeps its table until cleared

    def trials(self) -> list[str]:
        return list(self._trials)

    def __contains__(self, trial: object) -> bool:
        return trial in self._trials

    def __len__(self) -> int:
        return len(self._trials)

    def state_bytes(self) -> int:
        pending, reshaped = self.pending, self.reshaped
        for table in pending:
            self.held += table.settle(self._shared)
        pending.clear()
        for state in reshaped:
            self.held += state.settle(self._shared)
        reshaped.clear()
        return self.held + allocated(_getsizeof(self._trials))

    def dump(self, trials: Iterable[str]) -> list[TrialDump]:
        dumped: list[TrialDump] = []
        for trial in trials:
            state = self._trials.get(trial)
            if state is not None:
                dumped.append((trial, state.head, [(slot, table.fixed, list(table.entries.items()))
                                                   for slot, table in state.tables.items()]))
        return dumped

    def load(self, dumped: Iterable[TrialDump]) -> list[str]:
        loaded: list[str] = []
        for trial, head, tables in dumped:
            self.drop(trial)
            state = self.trial(trial)
            state.set_head(head)
            for slot, fixed, items in tables:
                table = state.table(slot, fixed)
                table.entries.update(items)
                for key in table.entries:
                    table.touch(key)
            loaded.append(trial)
        return loaded


_TABLE_BYTES = allocated(_getsizeof(MemoryTable(False, set())))
_INT_BYTES = deep_size(1 << 20)  # a full int object
_TRIAL_BYTES = allocated(_getsizeof(MemoryTrial("", MemoryStore())))
