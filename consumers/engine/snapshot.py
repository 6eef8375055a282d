"""An engine's state for chosen trials as bytes, and back: what bounded recovery restores.

A snapshot holds, for each chosen trial, its book (counters, workers, notices said) and every table
(the rules' states and the engine's own: newest steps, alerted steps, log sequence numbers, metric
steps, objective, disabled metric definitions), encoded by :mod:`trainsentry.consumers.state.snapshot`. It is valid
only for an engine of the same trainsentry version and configuration (rules and their parameters,
metric definitions, objective): the schema says so, and anything else raises
:class:`~trainsentry.consumers.state.SnapshotError`. Decoding rebuilds only builtin containers,
numbers, numeric arrays, ``collections.deque``, the engine's record classes and the classes defined
in the modules of the configured rules; then everything is checked before anything is held: each
trial's book and tables (slot, kind, keys, the type of each value, the fields of the engine's own
records). A rule's state is checked for its class only: a forged one whose fields are of other
types cannot run code, but makes the evaluation of that trial's events raise. Counters (:class:`EngineStats`) are the process's own and are not part of a
snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Sequence
from importlib import metadata
from typing import Any

from trainsentry.consumers.state import SnapshotError, StateStore, decode_snapshot, encode_snapshot
from trainsentry.consumers.state.store import TrialDump
from trainsentry.rules.base import Rule
from trainsentry.rules.config import Config
from trainsentry.rules.objective import ObjectiveResult

from .alerts import FiredSteps
from .trial import (
    DISABLED,
    FIRED,
    FIXED_SLOTS,
    LAST_STEP,
    LOG_SEQ,
    METRIC_EXCESS,
    METRIC_STEPS,
    OBJECTIVE,
    SERIES_SESSION,
    SESSIONS,
    STATE_SESSION,
    STEP_OUTLIERS,
    TrialBook,
)

STATE_VERSION = 2  # the layout of the engine's slots; changed whenever their meaning changes

try:
    _PACKAGE_VERSION = metadata.version("trainsentry")
except metadata.PackageNotFoundError:  # run from a source tree that is not installed
    _PACKAGE_VERSION = "unknown"

_SINGLE = (OBJECTIVE, DISABLED, METRIC_EXCESS)  # slots holding one value, at key None
_NONE = type(None)


def schema_of(config: Config) -> str:
    """What a snapshot of an engine running ``config`` means: version and configuration."""
    return json.dumps({
        "trainsentry": _PACKAGE_VERSION, "state": STATE_VERSION,
        "rules": [[rule.name, rule.rule_type, dict(rule.params)] for rule in config.rules],
        "metrics": [[metric.name, metric.regex] for metric in config.metrics],
        "objective": [config.objective.metric, config.objective.type] if config.objective else None,
    }, sort_keys=True, default=repr)


class Snapshots:
    """Takes and restores snapshots of the trials of one engine's store."""

    def __init__(self, config: Config, rules: Sequence[Rule], store: StateStore) -> None:
        self._schema = schema_of(config)
        self._store = store
        self._value_types: dict[Hashable, tuple[type, ...]] = {
            LAST_STEP: (int,), FIRED: (FiredSteps,), LOG_SEQ: (int,),
            METRIC_STEPS: (int,), OBJECTIVE: (ObjectiveResult, _NONE), DISABLED: (frozenset,),
            METRIC_EXCESS: (dict,), STEP_OUTLIERS: (int,), SESSIONS: (tuple,),
            SERIES_SESSION: (int,), STATE_SESSION: (int,)}
        modules = set()
        for index, rule in enumerate(rules):
            state = rule.new_state()
            if state is not None:
                self._value_types[index] = (type(state),)
                modules.add(type(rule).__module__)
        classes: set[type] = {TrialBook, FiredSteps, ObjectiveResult}
        for module_name in modules:
            module = __import__(module_name, fromlist=["_"])
            classes.update(value for value in vars(module).values()
                           if isinstance(value, type) and value.__module__ == module_name
                           and not issubclass(value, Rule))
        self._classes = tuple(classes)

    def take(self, trials: Iterable[str]) -> bytes:
        """The state of those of ``trials`` that are held, as bytes."""
        return encode_snapshot({"trials": self._store.dump(trials)}, schema=self._schema)

    def restore(self, data: bytes) -> list[str]:
        """Hold the trials of ``data``, replacing what is held for them; return their ids."""
        payload = decode_snapshot(data, schema=self._schema, classes=self._classes)
        dumped = self._checked(payload)
        return self._store.load(dumped)

    def _checked(self, payload: Any) -> list[TrialDump]:
        """The trials of a decoded payload, every table checked; :class:`SnapshotError` otherwise."""
        trials = payload.get("trials") if isinstance(payload, dict) else None
        if not isinstance(trials, list):
            raise SnapshotError("is corrupt: it holds no list of trials")
        seen: set[str] = set()
        for item in trials:
            if not (isinstance(item, tuple) and len(item) == 3 and isinstance(item[0], str)
                    and isinstance(item[2], list)) or item[0] in seen:
                raise SnapshotError("is corrupt: a trial is not (id, record, tables) or comes twice")
            trial, book, tables = item
            seen.add(trial)
            where = f"is corrupt: trial {trial[:100]!r}"
            if not _plain_book(book):
                raise SnapshotError(f"{where} has no record, or a malformed one")
            slots = [self._check_table(where, table) for table in tables]
            if len(set(slots)) != len(slots) or LAST_STEP not in slots:
                raise SnapshotError(f"{where}: a slot comes twice, or its last steps are missing")
        return trials

    def _check_table(self, where: str, table: Any) -> Hashable:
        """The slot of a dumped table, once its kind, keys and values are checked."""
        if not (isinstance(table, tuple) and len(table) == 3 and isinstance(table[2], list)):
            raise SnapshotError(f"{where}: a table is not (slot, fixed, entries)")
        slot, fixed, entries = table
        types = self._value_types.get(slot) if type(slot) in (str, int) else None
        if types is None or fixed is not (slot in FIXED_SLOTS):
            raise SnapshotError(f"{where}: unknown slot {str(slot)[:100]!r} or wrong kind of table")
        for entry in entries:
            if not (isinstance(entry, tuple) and len(entry) == 2):
                raise SnapshotError(f"{where}: an entry of slot {slot!r} is not (key, value)")
            key, value = entry
            if slot in _SINGLE and key is not None:
                raise SnapshotError(f"{where}: slot {slot!r} holds a key other than None")
            if not _plain_key(key):
                raise SnapshotError(f"{where}: a key of slot {slot!r} is not a tuple of str and int")
            if not isinstance(value, types) or (int in types and isinstance(value, bool)):
                raise SnapshotError(f"{where}: slot {slot!r} holds a {type(value).__name__}")
            if slot == FIRED and not _plain_fired(value):
                raise SnapshotError(f"{where}: malformed alerted steps")
            if slot == SESSIONS and not all(type(s) is str or s is None for s in value):
                raise SnapshotError(f"{where}: malformed writer sessions")
        return slot


_KEY_ATOMS = (str, int, float, _NONE)
_KEY_DEPTH = 8


def _plain_key(key: Any) -> bool:
    """Whether ``key`` is None, a str or number, or tuples of those nested at most 8 deep.

    Checked without recursion, before anything hashes it (a forged key nested thousands deep
    would exhaust the C stack while being hashed).
    """
    stack = [(key, 0)]
    while stack:
        item, depth = stack.pop()
        if type(item) is tuple:
            if depth >= _KEY_DEPTH:
                return False
            stack.extend((element, depth + 1) for element in item)
        elif not isinstance(item, _KEY_ATOMS):
            return False
    return True


def _ints(values: Any) -> bool:
    return all(type(value) is int for value in values)


def _strings(values: Any) -> bool:
    return type(values) is tuple and all(type(value) is str for value in values)


def _plain_book(book: Any) -> bool:
    """Whether ``book`` is a :class:`TrialBook` whose fields have their types."""
    if type(book) is not TrialBook:
        return False
    counts = (book.value_events, book.selected, book.stopped, book.failed, book.late,
              book.duplicate, book.duplicate_lines)
    return _ints(counts) and _strings(book.said) and _strings(book.workers) and _strings(book.ended)


def _plain_fired(fired: FiredSteps) -> bool:
    """Whether ``fired`` holds a set and a list of steps and a floor, all ints."""
    return (type(fired.steps) is set and type(fired.heap) is list and type(fired.floor) is int
            and _ints(fired.steps) and _ints(fired.heap))
