"""Log events: redelivered lines dropped, metrics parsed out, the objective kept, ends of trials.

A line is taken once per (trial, worker, stream, session) and ``seq``: a ``seq`` at or below the
newest taken is a redelivery, counted and dropped (a restarted writer starts a new session). Each
value a metric definition finds becomes a :class:`MetricEvent` and is fed back as a one-element
series (collection ``metrics``, mode GLOBAL, step = how many values of that metric the (trial,
worker) had before). A line marked ``final`` is a worker's end marker: once every worker seen has
sent one, the trial is reported ended (its state is kept until released: the worker's last
tensors travel on another topic and may still be on their way).

Metric matching is bounded per line, per batch and per trial
(:class:`~trainsentry.rules.metrics.MatchBudgets`): a line met
once its batch's budget is spent is taken (its ``seq``, its end marker) but not matched.
"""

from __future__ import annotations

from trainsentry.consumers.state import StateStore, Table, TrialState
from trainsentry.protocol import Event, LogEvent, MetricEvent, ScalarEvent
from trainsentry.rules.metrics import MetricExtractor
from trainsentry.rules.objective import ObjectiveTracker

from .capacity import TrialCapacity
from .notices import Notices
from .series import NO_EVENTS, SeriesFeed
from .stats import EngineStats
from .trial import LOG_SEQ, METRIC_STEPS, TrialBook, Trials


class LogFeed:
    """Evaluates log events (see the module's docstring)."""

    def __init__(self, store: StateStore, trials: Trials, series: SeriesFeed,
                 extractor: MetricExtractor | None, objectives: ObjectiveTracker | None,
                 time_budget_ms: float, notices: Notices, stats: EngineStats,
                 capacity: TrialCapacity) -> None:
        self._store = store
        self._capacity = capacity
        self._trials = trials
        self._series = series
        self._extractor = extractor
        self._objectives = objectives
        self._objective_metric = objectives.objective.metric if objectives is not None else None
        self._time_budget_ms = time_budget_ms
        self._notices = notices
        self._stats = stats
        self._ended: list[str] = []  # trials ended since drain_ended()

    def on_log(self, event: LogEvent) -> list[Event]:
        trial = event.trial
        state = self._store.find(trial)
        if state is None or state.head is None:
            state = self._trials.open(trial)
        book: TrialBook = state.head
        seqs = state.table(LOG_SEQ, fixed=True)
        key = (event.worker, event.stream, event.session)
        last = seqs.entries.get(key)
        if last is None and len(seqs.entries) >= self._capacity.max_series:
            self._capacity.refuse_series(state, trial, f"log stream {event.stream} of worker "
                                         f"{event.worker!r}, session {event.session!r}")
            return NO_EVENTS
        if last is not None and event.seq <= last:
            self._stats.duplicate_log_lines += 1
            book.duplicate_lines += 1
            return NO_EVENTS
        seqs.put(key, event.seq)
        self._trials.add_worker(state, event.worker)
        out = self._metrics_of(event, state)
        if event.final:
            if event.worker not in book.ended:
                book.ended += (event.worker,)
                state.touch_head()
            if set(book.ended) >= set(book.workers):
                self._notices.about(state, "ended", f"trial {trial!r} ended: its "
                                    f"{len(book.workers)} worker(s) sent their end marker")
                self._ended.append(trial)
        return out

    def drain_ended(self) -> list[str]:
        """Trials whose every worker has sent its end marker since the last call."""
        ended, self._ended = self._ended, []
        return ended

    def _metrics_of(self, event: LogEvent, state: TrialState) -> list[Event]:
        """The metric events of one log line, each followed by the alerts it causes as a series."""
        if self._extractor is None:
            return NO_EVENTS
        trial = event.trial
        extractor = self._extractor
        values = extractor.extract(trial, event.line)
        for disabled_trial, name, why in extractor.drain_disabled():
            spent = (f"its time budget of {self._time_budget_ms:g} ms on one line" if why == "line"
                     else f"its time budget of {extractor.budgets.trial * 1000:g} ms over the "
                          f"trial's lines (beyond {extractor.budgets.allowance * 1000:g} ms a line)")
            self._notices.add(f"trial {disabled_trial!r}: metric definition {name!r} exceeded "
                              f"{spent} and is disabled for this trial; the other definitions go on")
        if extractor.skipping:
            self._notices.about(state, "metric batch budget", (
                f"trial {trial!r}: metric extraction skipped for log lines of a batch that spent "
                f"its matching budget of {extractor.budgets.batch * 1000:g} ms; skipped lines "
                f"are counted, further ones only counted"))
        if not values:
            return NO_EVENTS
        counts: Table = state.table(METRIC_STEPS, fixed=True)
        out: list[Event] = []
        for name, value in values:
            count_key = (event.worker, name)
            step = counts.entries.get(count_key, 0)
            counts.put(count_key, step + 1)
            self._stats.metric_values += 1
            objective = name == self._objective_metric
            out.append(MetricEvent(trial, event.ts, name, value, step, event.worker,
                                   True if objective else None))
            if objective:
                self._objectives.record(trial, event.worker, step, value)
            series = ScalarEvent(trial, event.ts, "GLOBAL", step, name, value, event.worker,
                                 None, ("metrics",), event.session)
            out.extend(self._series.on_metric(series))
        return out
