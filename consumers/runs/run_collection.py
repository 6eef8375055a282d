"""Every trial seen on the topics (or in a replay), event by event, in bounded memory.

:meth:`RunCollection.observe` takes any protocol event: tensors and scalars become curves (and the
statistics of weights and gradients), metrics become curves and feed the objective, alerts are kept
per trial, log lines only tell which workers exist and which have ended. At most
``limits.trials`` trials are held: a new one beyond that evicts the trial whose newest event is
oldest, ended trials first, and the eviction is counted.

>>> from trainsentry.protocol import ScalarEvent
>>> runs = RunCollection(Limits(trials=1))
>>> runs.observe(ScalarEvent("a", 10.0, "TRAIN", 0, "loss", 0.9))
>>> runs.observe(ScalarEvent("b", 11.0, "TRAIN", 0, "loss", 0.8))
>>> list(runs.trials), runs.evicted
(['b'], 1)
>>> runs.summaries(now=12.0)[0]["status"], runs.summaries(now=12.0)[0]["last_step"]
('running', 0)
"""

from __future__ import annotations

from typing import Any

from trainsentry.protocol import AlertEvent, Event, LogEvent, MetricEvent, ScalarEvent, TensorEvent
from trainsentry.rules.objective import Objective, ObjectiveTracker

from .layer_stats import layer_stats
from .series import json_value
from .trial_record import Limits, SeriesKey, TrialChanges, TrialRecord

DEFAULT_STALLED_AFTER = 120.0  # seconds without an event before a trial that has not ended is "stalled"


class RunCollection:
    """The trials, their curves and alerts; the objective when the metrics name one."""

    def __init__(self, limits: Limits | None = None, stalled_after: float = DEFAULT_STALLED_AFTER,
                 objective_type: str = "Minimize") -> None:
        self.limits = limits or Limits()
        self.stalled_after = stalled_after
        self.objective_type = objective_type
        self.objectives: ObjectiveTracker | None = None  # made on the first objective metric
        self.trials: dict[str, TrialRecord] = {}
        self.evicted = 0
        self.not_charted = 0   # tensor events that are neither one value nor a weight/gradient
        self._runs_changed = True

    # --- events in ---------------------------------------------------------------------------

    def observe(self, event: Event) -> None:
        """Take one event of any type into its trial."""
        record = self.trials.get(event.trial)
        if record is None:
            record = self._new_trial(event.trial)
        self._runs_changed = True
        if isinstance(event, ScalarEvent):
            record.saw(event.worker, event.ts, event.mode, event.gstep)
            record.add_point(SeriesKey("scalar", event.name, event.worker, event.mode),
                             event.step, event.value)
        elif isinstance(event, TensorEvent):
            record.saw(event.worker, event.ts, event.mode, event.gstep)
            self._observe_tensor(record, event)
        elif isinstance(event, MetricEvent):
            record.saw(event.worker, event.ts)
            record.add_point(SeriesKey("metric", event.name, event.worker, "GLOBAL"),
                             event.step, event.value)
            if event.objective:
                self._objective(event.name).record(event.trial, event.worker, event.step, event.value)
        elif isinstance(event, AlertEvent):
            record.saw(event.worker, event.ts)
            record.add_alert(event)
        elif isinstance(event, LogEvent):
            record.saw(event.worker, event.ts)
            if event.final:
                record.ended(event.worker)

    def _observe_tensor(self, record: TrialRecord, event: TensorEvent) -> None:
        stats = layer_stats(event)
        if stats is not None:
            for stat, value in stats.items():
                record.add_point(SeriesKey(stat, event.name, event.worker, event.mode), event.step, value)
            return
        data = event.array()
        if data is not None and data.size == 1:
            record.add_point(SeriesKey("scalar", event.name, event.worker, event.mode),
                             event.step, float(data.reshape(-1)[0]))
        else:
            self.not_charted += 1

    def _objective(self, metric: str) -> ObjectiveTracker:
        if self.objectives is None:
            self.objectives = ObjectiveTracker(Objective(metric, self.objective_type))
            for trial in self.trials:
                self.objectives.saw_trial(trial)
        return self.objectives

    def _new_trial(self, trial: str) -> TrialRecord:
        if len(self.trials) >= self.limits.trials:
            self._evict_one()
        record = self.trials[trial] = TrialRecord(trial, self.limits)
        if self.objectives is not None:
            self.objectives.saw_trial(trial)
        return record

    def _evict_one(self) -> None:
        def age(record: TrialRecord) -> tuple[bool, float]:  # ended first, then the quietest
            ended = bool(record.workers) and all(record.workers.values())
            return (not ended, record.last_ts or 0.0)
        oldest = min(self.trials.values(), key=age)
        del self.trials[oldest.trial]
        if self.objectives is not None:
            self.objectives.forget(oldest.trial)
        self.evicted += 1

    # --- views out ---------------------------------------------------------------------------

    def summary(self, record: TrialRecord, now: float) -> dict[str, Any]:
        """One row of the runs table."""
        objective = None
        if self.objectives is not None and (result := self.objectives.result(record.trial)):
            objective = {"metric": self.objectives.objective.metric, "type": self.objectives.objective.type,
                         "final": json_value(result.final), "final_step": result.final_step,
                         "best": json_value(result.best), "best_step": result.best_step}
        return {
            "trial": record.trial,
            "workers": sorted(record.workers),
            "workers_ended": sorted(w for w, ended in record.workers.items() if ended),
            "modes": sorted(record.modes),
            "status": record.status(now, self.stalled_after),
            "last_step": record.last_step,
            "first_ts": record.first_ts,
            "last_ts": record.last_ts,
            "age": None if record.last_ts is None else max(0.0, now - record.last_ts),
            "events": record.events,
            "alerts": dict(record.alert_counts),
            "alerts_by_rule": dict(record.alerts_by_rule),
            "objective": objective,
        }

    def summaries(self, now: float) -> list[dict[str, Any]]:
        return [self.summary(record, now) for record in self.trials.values()]

    def drain_changes(self) -> tuple[bool, dict[str, TrialChanges]]:
        """Whether the runs table changed, and each trial's new points and alerts, since the last call."""
        changed, self._runs_changed = self._runs_changed, False
        out = {}
        for trial, record in self.trials.items():
            changes = record.drain_changes()
            if changes is not None:
                out[trial] = changes
        return changed, out
