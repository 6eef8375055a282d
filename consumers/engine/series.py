"""Tensor and scalar events: each value to its series in step order, then to the rules' states.

A series is (trial, worker, view, tensor). A value whose step is at or below its series' newest
step is late (or a duplicate): counted, said once per trial, never shown to a rule. The others
advance the series and are observed by every rule routed there, each with its state for the key
it asks for (:meth:`Rule.state_key`), created by :meth:`Rule.new_state` the first time; the state
is marked changed with each observation so that the store sizes it again.

A step more than 2^32 away from its series' newest step is an outlier, believed only when the
next event continues from it (:mod:`.steps`); a series beyond the trial's cap is refused
(:mod:`.capacity`). An event of a newer writer session restarts its series, one of an older
session is late (:mod:`.sessions`). A rule that raises is disabled for the trial and the other
rules go on (:mod:`.rule_failures`).
"""

from __future__ import annotations

from collections.abc import Sequence

from trainsentry.consumers.state import StateStore, TrialState
from trainsentry.protocol import Event, ScalarEvent, TensorEvent
from trainsentry.rules.base import Observation, Rule, View

from .alerts import Alerts
from .capacity import TrialCapacity
from .notices import SELECTION_NOTICE_AFTER, Notices
from .routing import Router
from .rule_failures import RuleFailures
from .sessions import LOGS, NEWER, OLDER, VALUES, Sessions
from .stats import EngineStats
from .steps import MAX_STEP_JUMP, StepOutliers
from .trial import LAST_STEP, SERIES_SESSION, SESSIONS, STATE_SESSION, STEP_OUTLIERS, TrialBook, Trials

NO_EVENTS: list[Event] = []  # the shared empty result: never appended to


class SeriesFeed:
    """Evaluates tensor and scalar events (see the module's docstring)."""

    def __init__(self, rules: Sequence[Rule], store: StateStore, trials: Trials, router: Router,
                 alerts: Alerts, notices: Notices, stats: EngineStats,
                 capacity: TrialCapacity, outliers: StepOutliers) -> None:
        self._capacity = capacity
        self._max_series = capacity.max_series
        self._outliers = outliers
        self._rules = tuple(rules)
        self._find = store.find
        self._trials = trials
        self._router = router
        self._routes = router.cache
        self._alerts = alerts
        self._notices = notices
        self._stats = stats
        self._sessions = Sessions()
        self._failures = RuleFailures(rules, notices, stats)

    def on_tensor(self, event: TensorEvent) -> list[Event]:
        return self.evaluate(event, True)

    def on_metric(self, event: ScalarEvent) -> list[Event]:
        """The alerts of a metric's value, a series written by the log's session."""
        return self.evaluate(event, False, LOGS)

    def evaluate(self, event: ScalarEvent | TensorEvent, tensor: bool = False,
                 kind: str = VALUES) -> list[Event]:
        """The alerts of one scalar, or of one tensor when ``tensor`` (see the module's docstring).

        A tensor's values are read (``event.array()``, no copy) only when some rule takes it.
        ``kind`` says whose sessions the event's is numbered among (:mod:`.sessions`).
        """
        routes = self._routes.get((event.name, event.collections, event.mode))
        if routes is None:
            routes = self._router.route(event.name, event.collections, event.mode)
        if tensor:
            data = event.array() if routes else None
            value = float(data.reshape(-1)[0]) if data is not None and data.size == 1 else None
            reductions = event.reductions
        else:
            value, data, reductions = event.value, None, None
        trial = event.trial
        state = self._find(trial)
        if state is None or state.head is None:
            state = self._trials.open(trial)
        tables = state.tables
        book: TrialBook = state.head
        book.value_events = count = book.value_events + 1
        worker = event.worker
        if worker not in book.workers:
            self._trials.add_worker(state, worker)
        if count == SELECTION_NOTICE_AFTER:
            self._notices.unselected(trial, state, self._rules, at_end=False)
        if not routes:
            self._stats.unselected += 1
            return NO_EVENTS
        sessions = tables.get(SESSIONS)
        seen = sessions.entries.get(worker) if sessions is not None and kind == VALUES else None
        if seen is not None and len(seen) == 1 and seen[0] == event.session:
            ordinal = 0  # the usual case: the worker's one and only session
        else:
            ordinal, resumed = self._sessions.ordinal(state, worker, event.session, kind)
            if resumed:  # a new writer session: stop_at_first starts afresh
                self._sessions.restart_stopped(state)
        resumable = ordinal != 0 or SERIES_SESSION in tables
        spans_sessions = ordinal != 0 or STATE_SESSION in tables
        older_session = False
        out = NO_EVENTS
        out_of_order: tuple[int, int, View] | None = None
        stopped = book.stopped | book.failed
        last_steps = tables[LAST_STEP]
        newest = last_steps.entries
        outliers = tables.get(STEP_OUTLIERS)
        name = event.name
        for view, members, stateless in routes:
            step = event.step
            if view.global_numbering and event.global_step is not None:
                step = event.global_step
            series = (worker, view.key, name)
            last = newest.get(series)
            restarted = renewed = False
            if last is None:
                if len(newest) >= self._max_series:
                    self._capacity.refuse_series(state, trial, repr(name))
                    continue
                last_steps.put(series, step)
                if ordinal:
                    self._sessions.set_series_ordinal(state, series, ordinal)
            elif resumable and (current := self._sessions.series_ordinal(state, series)) != ordinal:
                if ordinal < current:  # written by a session this series has moved on from
                    older_session = True
                    continue
                newest[series] = step  # the series starts over, whatever its step
                self._sessions.set_series_ordinal(state, series, ordinal)
                self._stats.resumed_series += 1
                renewed = True
            elif step <= last:
                # Far below: the newest step may be a stray one (.steps); else simply late.
                if last - step <= MAX_STEP_JUMP or not self._outliers.behind(
                        state, series, step, last, event):
                    out_of_order = (step, last, view)
                    continue
                newest[series] = step
                restarted = True
            elif step - last > MAX_STEP_JUMP and not self._outliers.ahead(
                    state, series, step, last, event):
                continue  # far ahead, not confirmed: the series keeps its newest step
            else:
                newest[series] = step  # a fixed table: same size, nothing to size again
                if outliers is not None and series in outliers.entries:
                    self._outliers.settled(state, series)
            if stateless:
                book.selected |= stateless
            obs = Observation(trial, worker, view.mode, name, step, event.collections, event.ts,
                              series, value, data, reductions)
            for index, rule, keyed, new_state in members:
                if stopped and (stopped >> index) & 1:
                    continue
                try:
                    if keyed is None:
                        finding = rule.observe(None, obs)
                    else:
                        table = tables.get(index)
                        if table is None:
                            table = state.table(index)
                        key = series if keyed is True else keyed(obs)
                        if restarted or (renewed and not rule.state_spans_series):
                            table.delete(key)  # the series starts over: so do its states
                        elif spans_sessions and rule.state_spans_series:
                            turn = self._sessions.turn(state, index, key, ordinal)
                            if turn == NEWER:  # the first value of a new session it receives
                                table.delete(key)
                            elif turn == OLDER:
                                rule.skip("a value of an earlier writer session")
                                continue
                        rule_state = table.entries.get(key)
                        if rule_state is None or not table.marked:  # else: to be sized anyway
                            rule_state = table.edit(key, new_state)
                        finding = rule.observe(rule_state, obs)
                except Exception as exc:  # a rule's bug: disabled for this trial, the others go on
                    self._failures.disable(trial, state, index, exc,
                                           f"step {step} of {name!r} ({view.mode}, worker {worker})")
                    stopped = book.stopped | book.failed
                    continue
                if finding is not None:
                    alert = self._alerts.alert(index, finding, state, event.session)
                    if alert is not None:
                        if out is NO_EVENTS:
                            out = []
                        out.append(alert)
                        stopped = book.stopped | book.failed  # stop_at_first may have stopped it
        if out_of_order is not None:  # counted once per event, whatever the number of views
            self._out_of_order(event, state, *out_of_order)
        if older_session:
            self._older_session(event, state)
        return out

    def _older_session(self, event: ScalarEvent | TensorEvent, state: TrialState) -> None:
        book: TrialBook = state.head
        self._stats.late += 1
        book.late += 1
        self._notices.about(state, "older session", (
            f"trial {event.trial!r}: {event.name!r} (worker {event.worker}) of writer session "
            f"{event.session!r} arrived after a newer session of that series began; such events "
            f"are late: counted and ignored, further ones only counted"))

    def _out_of_order(self, event: ScalarEvent | TensorEvent, state: TrialState, step: int,
                      last: int, view: View) -> None:
        book: TrialBook = state.head
        kind = "duplicate" if step == last else "late"
        if kind == "late":
            self._stats.late += 1
            book.late += 1
        else:
            self._stats.duplicate += 1
            book.duplicate += 1
        self._notices.about(state, kind, f"trial {event.trial!r}: {kind} step {step} of "
                            f"{event.name!r} (worker {event.worker}, {view.mode}) after step "
                            f"{last}; {kind} steps are counted and ignored, further ones only counted")
