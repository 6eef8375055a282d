"""The engine's clock, and the rules that judge time by it (docs/rules.md, "StalledTrainingRule").

The clock belongs to the source. A live source moves it (:meth:`Engine.advance_clock`) with its
own clock before each batch and at least once a second while nothing arrives; from the first such
call on, a worker's event time is the clock when its event arrived. Without such calls (a replay),
the clock is the newest event ``ts`` read so far, moved *before* the event that moves it is heard,
and a worker's event time is its event's ``ts``. The clock never goes back.

Each :class:`~trainsentry.rules.clocked.ClockedRule` keeps one state per (trial, worker) in the
rule's slot of the trial, told of every ``tensor``, ``scalar`` and ``log`` event of the worker.
The times the states are due are kept in one heap for the whole engine, at most one live entry
per (trial, worker, rule): a worker heard of again keeps its entry, which is put back at its new
time when it comes up. Moving the clock therefore costs only the entries that are due, never a
scan of the trials. The entries of a forgotten trial are dead: dropped when they come up, and all
at once when they are half the heap.

>>> from trainsentry.protocol import ScalarEvent
>>> from trainsentry.rules.config import Config, RuleConfig
>>> from trainsentry.consumers.engine import Engine
>>> engine = Engine(Config(rules=(RuleConfig.of("StalledTrainingRule", threshold=60),)))
>>> engine.process(ScalarEvent("run-1", 1000.0, "TRAIN", 7, "loss", 0.5, worker="0"))
[]
>>> engine.advance_clock(1050.0), engine.process(ScalarEvent("run-1", 1055.0, "TRAIN", 8, "loss", 0.4))
([], [])
>>> [(a.worker, a.step, a.details["gap"]) for a in engine.advance_clock(1111.0)]
[('0', 8, 61.0)]
>>> engine.advance_clock(1500.0)  # once per stall
[]
"""

from __future__ import annotations

import heapq
import itertools
import sys
from collections.abc import Iterable, Sequence

from trainsentry.consumers.state import StateStore, TrialState
from trainsentry.consumers.state.sizing import allocated, deep_size
from trainsentry.protocol import Event, LogEvent, ScalarEvent, TensorEvent
from trainsentry.rules.base import Rule
from trainsentry.rules.clocked import ClockedRule

from .alerts import Alerts
from .notices import Notices
from .rule_failures import RuleFailures
from .sessions import LOGS, VALUES, Sessions
from .stats import EngineStats
from .trial import TrialBook, Trials

NO_EVENTS: list[Event] = []  # the shared empty result: never appended to
_ENTRY_BYTES = deep_size((0.5, 1 << 40, "", "", 1)) + 8  # a heap entry, and its slot in the list


class ClockFeed:
    """Moves the clock and tells the clocked rules (see the module's docstring)."""

    def __init__(self, rules: Sequence[Rule], store: StateStore, trials: Trials, alerts: Alerts,
                 notices: Notices, stats: EngineStats) -> None:
        self._rules = tuple(rules)
        self._clocked = tuple((index, rule) for index, rule in enumerate(rules)
                              if isinstance(rule, ClockedRule))
        self.active = bool(self._clocked)
        self.now = float("-inf")
        self.from_source = False
        self._find = store.find
        self._trials = trials
        self._alerts = alerts
        self._failures = RuleFailures(rules, notices, stats)
        self._sessions = Sessions()
        self._heap: list[tuple[float, int, str, str, int]] = []
        # trial -> (worker, rule index) -> the token of its live entry in the heap
        self._live: dict[str, dict[tuple[str, int], int]] = {}
        self._dead = 0  # entries of the heap that are no longer live
        self._tokens = itertools.count()  # entry tokens; ties in the heap never compare trials

    def horizon(self) -> float | None:
        """The longest silence a clocked rule waits for (``None``: none, or no bound)."""
        horizons = [rule.horizon() for _, rule in self._clocked]
        return None if not horizons or None in horizons else max(horizons)

    def advance(self, now: float) -> list[Event]:
        """The source's clock reads ``now``: from now on the clock is the source's."""
        self.from_source = True
        return self._move(now)

    def heard(self, event: TensorEvent | ScalarEvent | LogEvent) -> list[Event]:
        """An event of a worker arrived: the alerts of the clock it moves (a replay's), in order."""
        out = NO_EVENTS
        if self.from_source:
            at = self.now
        else:
            at = event.ts
            if at > self.now:
                out = self._move(at)
        trial, worker = event.trial, event.worker
        state = self._find(trial)
        if state is None or state.head is None:
            state = self._trials.open(trial)
        if isinstance(event, LogEvent):
            step, final, kind = None, bool(event.final), LOGS
        else:
            step, final, kind = event.gstep, False, VALUES
        if self._sessions.ordinal(state, worker, event.session, kind)[1]:
            self._sessions.restart_stopped(state)  # a resumed writer: stop_at_first afresh
        book: TrialBook = state.head
        skip = book.stopped | book.failed
        for index, rule in self._clocked:
            if skip >> index & 1:
                continue
            table = state.table(index)
            try:
                worker_state = table.edit(worker, rule.new_state)
                rule.heard(worker_state, at, step, event.ts, event.session, final)
                due = rule.due(worker_state)
            except Exception as exc:  # a rule's bug: that rule is disabled for this trial
                self._failures.disable(trial, state, index, exc, f"an event of worker {worker!r}")
                continue
            if due is not None:
                self._queue(due, trial, worker, index)
        return out

    def restored(self, trials: Iterable[str]) -> None:
        """Trials came from a snapshot: their workers' due times go into the heap."""
        for trial in trials:
            state = self._find(trial)
            if state is None:
                continue
            for index, rule in self._clocked:
                table = state.tables.get(index)
                for worker, worker_state in (table.entries.items() if table is not None else ()):
                    due = rule.due(worker_state)
                    if due is not None:
                        self._queue(due, trial, worker, index)

    def forget(self, trial: str) -> None:
        """``trial`` is let go: its entries are dead."""
        live = self._live.pop(trial, None)
        if not self._live:
            self._live.clear()  # an emptied dict keeps its table until cleared
        if live:
            self._dead += len(live)
            if self._dead * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if self._is_live(entry)]
                heapq.heapify(self._heap)
                self._dead = 0

    def held_bytes(self) -> int:
        """Bytes of the heap and of the index of its live entries."""
        return (allocated(sys.getsizeof(self._heap)) + allocated(sys.getsizeof(self._live))
                + sum(allocated(sys.getsizeof(live)) for live in self._live.values())
                + _ENTRY_BYTES * 2 * len(self._heap))

    def _queue(self, due: float, trial: str, worker: str, index: int) -> None:
        live = self._live.get(trial)
        if live is None:
            live = self._live[trial] = {}
        if (worker, index) not in live:
            token = live[(worker, index)] = next(self._tokens)
            heapq.heappush(self._heap, (due, token, trial, worker, index))

    def _is_live(self, entry: tuple[float, int, str, str, int]) -> bool:
        live = self._live.get(entry[2])
        return live is not None and live.get((entry[3], entry[4])) == entry[1]

    def _unqueue(self, trial: str, worker: str, index: int) -> None:
        live = self._live.get(trial)
        if live is not None:
            live.pop((worker, index), None)
            if not live:
                del self._live[trial]

    def _move(self, now: float) -> list[Event]:
        if not now > self.now:
            return NO_EVENTS
        self.now = now
        heap, out = self._heap, NO_EVENTS
        while heap and heap[0][0] < now:
            entry = heapq.heappop(heap)
            if not self._is_live(entry):
                self._dead = max(0, self._dead - 1)
                continue
            _, _, trial, worker, index = entry
            self._unqueue(trial, worker, index)
            state = self._find(trial)
            table = state.tables.get(index) if state is not None and state.head is not None else None
            worker_state = table.entries.get(worker) if table is not None else None
            if worker_state is None or (state.head.stopped | state.head.failed) >> index & 1:
                continue
            alert = self._due(state, index, trial, worker, worker_state, now)
            if alert is not None:
                if out is NO_EVENTS:
                    out = []
                out.append(alert)
        return out

    def _due(self, state: TrialState, index: int, trial: str, worker: str, worker_state: object,
             now: float) -> Event | None:
        """Show the clock to the rule of one due entry; put the entry back when due again."""
        rule: ClockedRule = self._rules[index]  # type: ignore[assignment]
        try:
            due = rule.due(worker_state)
            if due is not None and not due < now:  # heard of since it was queued: later
                self._queue(due, trial, worker, index)
                return None
            finding = None if due is None else rule.on_clock(worker_state, trial, worker, now)
            following = rule.due(worker_state)
            session = rule.session_of(worker_state)
        except Exception as exc:
            self._failures.disable(trial, state, index, exc, f"the clock for worker {worker!r}")
            return None
        state.tables[index].touch(worker)
        if following is not None and not following < now:
            self._queue(following, trial, worker, index)
        if finding is None:
            return None
        return self._alerts.alert(index, finding, state, session)
