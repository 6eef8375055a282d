"""The one rule engine behind the live sidecar and every replay: a pure function of the events.

Given the same events in the same order, :class:`Engine` returns the same outputs, field for field:
no I/O, no clock (an alert's ``ts`` is the ``ts`` of the newest input event it used), no asyncio.
The one exception is a metric regex that runs out of its time budget, which is disabled for its
trial and reported.

What it does with each input event:

- ``tensor`` / ``scalar``: routed to the series of every rule that selects it, one series per
  (trial, worker, view, tensor). A step at or below the series' newest step is late (or a
  duplicate): counted, reported once per trial, never shown to a rule. Each rule's finding becomes
  an :class:`AlertEvent` unless that (trial, rule, worker, mode, step) already alerted.
- ``log``: de-duplicated by ``seq`` per (trial, worker, stream), then matched by the metric
  definitions; each value becomes a :class:`MetricEvent` and is fed back as a one-element series
  (collection ``metrics``, mode GLOBAL, step = how many values of that metric the (trial, worker)
  had before).
- ``metric`` / ``alert``: ignored (replay recomputes them).

A rule that has selected no series of a trial after :data:`SELECTION_NOTICE_AFTER` tensor and
scalar events of that trial (or at :meth:`Engine.end_of_input`) is reported once.

>>> from trainsentry.protocol import ScalarEvent
>>> from trainsentry.rules.config import Config, RuleConfig
>>> engine = Engine(Config(rules=(RuleConfig.of("LossNotDecreasing", num_steps=2),)))
>>> events = [ScalarEvent("run-1", 100.0 + s, "TRAIN", s, "loss", v, collections=("losses",))
...           for s, v in enumerate([1.0, 0.9, 1.1])]
>>> [(a.rule, a.step, a.ts) for a in engine.process_many(events)]
[('LossNotDecreasing', 2, 102.0)]
>>> engine.process(events[1]), engine.stats.late
([], 1)
"""

from __future__ import annotations

import hashlib
import heapq
import json
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from trainsentry.protocol import (AlertEvent, Event, LogEvent, MetricEvent, ScalarEvent,
                                            TensorEvent)
from trainsentry.rules.base import ENTRY_BYTES, Finding, Observation, Rule, View
from trainsentry.rules.config import Config
from trainsentry.rules.metrics import MetricExtractor
from trainsentry.rules.objective import ObjectiveTracker

SELECTION_NOTICE_AFTER = 1000  # tensor/scalar events of a trial before "selects nothing" is said
FIRED_STEPS_KEPT = 256         # alerted steps remembered per (trial, rule, worker, mode)
ROUTE_CACHE_LIMIT = 100_000    # distinct (name, collections, mode) keys before the cache restarts

_NOTHING: list[Event] = []  # shared empty result: never appended to

# For one (name, collections, written mode): each view it feeds, with the indices of its rules.
Routes = tuple[tuple[View, tuple[int, ...]], ...]


@dataclass
class EngineStats:
    """Counters of what the engine saw and did (never reset)."""

    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("tensor", "scalar", "log", "metric", "alert"), 0))
    late: int = 0                  # tensor/scalar events after a later step of their series
    duplicate: int = 0             # tensor/scalar events repeating a step of their series
    duplicate_log_lines: int = 0   # log events at or below the highest seq seen
    unselected: int = 0            # tensor/scalar events no rule selects
    skipped: dict[str, int] = field(default_factory=dict)  # "rule: reason" -> selected, unusable
    metric_values: int = 0
    unparsable_captures: int = 0
    regex_timeouts: int = 0
    alerts: dict[str, int] = field(default_factory=dict)   # rule name -> alerts emitted
    suppressed_findings: int = 0   # findings for a step older than the remembered alerted steps


class _FiredSteps:
    """The steps one (trial, rule, worker, mode) alerted at, bounded.

    The newest :data:`FIRED_STEPS_KEPT` are remembered; a finding at or below the floor of the
    forgotten ones is suppressed (counted), so no step ever alerts twice.
    """

    __slots__ = ("steps", "heap", "floor")

    def __init__(self) -> None:
        self.steps: set[int] = set()
        self.heap: list[int] = []
        self.floor = -1

    def add(self, step: int) -> str:
        """``"new"``, ``"again"`` (already alerted) or ``"stale"`` (below the floor)."""
        if step in self.steps:
            return "again"
        if step <= self.floor:
            return "stale"
        self.steps.add(step)
        heapq.heappush(self.heap, step)
        if len(self.heap) > FIRED_STEPS_KEPT:
            self.floor = heapq.heappop(self.heap)
            self.steps.discard(self.floor)
        return "new"


class _TrialState:
    """Everything the engine itself holds for one trial."""

    __slots__ = ("value_events", "last_step", "selected", "stopped", "fired", "said", "late",
                 "duplicate", "log_seq", "metric_counts", "duplicate_lines", "workers", "ended")

    def __init__(self) -> None:
        self.value_events = 0
        self.last_step: dict[tuple[str, str, str], int] = {}  # (worker, view, name) -> step
        self.selected: set[int] = set()                       # rules that selected a series
        self.stopped: set[int] = set()                        # rules stopped by stop_at_first
        self.fired: dict[tuple[int, str, str], _FiredSteps] = {}
        self.said: set[str] = set()
        self.late = self.duplicate = self.duplicate_lines = 0
        self.log_seq: dict[tuple[str, str, str | None], int] = {}  # (worker, stream, session) -> seq
        self.metric_counts: dict[tuple[str, str], int] = {}   # (worker, metric) -> values so far
        self.workers: set[str] = set()                        # every worker seen
        self.ended: set[str] = set()                          # workers that sent their end marker

    def bytes(self) -> int:
        entries = len(self.last_step) + len(self.log_seq) + len(self.metric_counts) + len(self.said)
        entries += sum(1 + len(f.steps) // 8 for f in self.fired.values())
        return ENTRY_BYTES * (entries + 1)


def alert_id(trial: str, rule: str, worker: str, mode: str, step: int) -> str:
    """The deterministic id of the alert for (trial, rule, worker, mode, step).

    >>> alert_id("run-1", "LossNotDecreasing", "0", "TRAIN", 12) == alert_id(
    ...     "run-1", "LossNotDecreasing", "0", "TRAIN", 12)
    True
    >>> len(alert_id("run-1", "LossNotDecreasing", "0", "TRAIN", 12))
    32
    """
    key = json.dumps([trial, rule, worker, mode, step], ensure_ascii=False)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class Engine:
    """Routes events to the configured rules and metric definitions; returns alerts and metrics."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.rules: tuple[Rule, ...] = tuple(rule.build() for rule in config.rules)
        self.objectives: ObjectiveTracker | None = (
            ObjectiveTracker(config.objective) if config.objective else None)
        self._objective_metric = config.objective.metric if config.objective else None
        self._extractor = (MetricExtractor(config.metrics, config.metric_time_budget_ms / 1000.0)
                           if config.metrics else None)
        self._selects: dict[tuple[str, tuple[str, ...]], tuple[bool, ...]] = {}
        self._routes: dict[tuple[str, tuple[str, ...], str], Routes] = {}
        self._trials: dict[str, _TrialState] = {}
        self._notices: list[str] = []
        self._said: set[str] = set()  # notices about no one trial
        self._ended: list[str] = []   # trials ended since drain_ended()
        self._stats = EngineStats()
        self._dispatch = {"tensor": self._on_tensor, "scalar": self._on_scalar, "log": self._on_log}

    # --- public API ---------------------------------------------------------------------------

    @property
    def stats(self) -> EngineStats:
        """The counters, with the rules' and metric definitions' own counts brought up to date."""
        stats = self._stats
        stats.skipped = {f"{rule.name}: {reason}": count
                         for rule in self.rules for reason, count in rule.skipped.items()}
        if self._extractor is not None:
            stats.unparsable_captures = self._extractor.unparsable
            stats.regex_timeouts = self._extractor.timeouts
        return stats

    def process(self, event: Event) -> list[Event]:
        """The new metric and alert events ``event`` causes, in order (often none)."""
        kind = event.type
        self._stats.events[kind] = self._stats.events.get(kind, 0) + 1
        handler = self._dispatch.get(kind)
        return _NOTHING if handler is None else handler(event)

    def process_many(self, events: Iterable[Event]) -> list[Event]:
        out: list[Event] = []
        for event in events:
            produced = self.process(event)
            if produced:
                out.extend(produced)
        return out

    def end_of_input(self) -> list[Event]:
        """Nothing is ever pending (verdicts are emitted at once); the end-of-input notices are queued."""
        for trial, state in self._trials.items():
            self._say_unselected(trial, state, at_end=True)
            if state.late or state.duplicate or state.duplicate_lines:
                self._say(state, "summary", f"trial {trial!r}: ignored {state.late} late and "
                          f"{state.duplicate} duplicate tensor/scalar events and "
                          f"{state.duplicate_lines} redelivered log lines")
        if self.objectives is not None:
            for trial in self.objectives.never_emitted():
                state = self._trials.get(trial)
                if state is not None:
                    self._say(state, "objective", f"trial {trial!r} never emitted the objective "
                              f"metric {self.objectives.objective.metric!r}")
        for key, count in self.stats.skipped.items():
            notice = f"rule {key}: {count} selected inputs skipped"
            if notice not in self._said:
                self._said.add(notice)
                self._notices.append(notice)
        return []

    def forget_trial(self, trial: str) -> None:
        """Release every byte held for ``trial`` (rules, series, metric steps, objective)."""
        self._trials.pop(trial, None)
        for rule in self.rules:
            rule.forget(trial)
        if self._extractor is not None:
            self._extractor.forget(trial)
        if self.objectives is not None:
            self.objectives.forget(trial)

    def drain_ended(self) -> list[str]:
        """Trials whose every worker has sent its end marker since the last call (each once)."""
        ended, self._ended = self._ended, []
        return ended

    def drain_notices(self) -> list[str]:
        """One-line messages for people, each said once, since the last call."""
        notices, self._notices = self._notices, []
        return notices

    def state_bytes(self) -> int:
        """Approximate bytes held: rule windows, per-trial bookkeeping and the routing caches."""
        total = sum(rule.state_bytes() for rule in self.rules)
        total += sum(state.bytes() for state in self._trials.values())
        return total + ENTRY_BYTES * (len(self._routes) + len(self._selects))

    # --- tensors and scalars ------------------------------------------------------------------

    def _on_scalar(self, event: ScalarEvent) -> list[Event]:
        routes = self._routes.get((event.name, event.collections, event.mode))
        if routes is None:
            routes = self._route(event.name, event.collections, event.mode)
        return self._observe(event, routes, event.value, None, None)

    def _on_tensor(self, event: TensorEvent) -> list[Event]:
        routes = self._routes.get((event.name, event.collections, event.mode))
        if routes is None:
            routes = self._route(event.name, event.collections, event.mode)
        data = event.array() if routes else None
        value = float(data.reshape(-1)[0]) if data is not None and data.size == 1 else None
        return self._observe(event, routes, value, data, event.reductions)

    def _observe(self, event: ScalarEvent | TensorEvent, routes: Routes, value: float | None,
                 data: np.ndarray | None, reductions: Mapping[str, float] | None) -> list[Event]:
        trial = event.trial
        state = self._trials.get(trial)
        if state is None:
            state = self._new_trial(trial)
        state.value_events += 1
        state.workers.add(event.worker)
        if state.value_events == SELECTION_NOTICE_AFTER:
            self._say_unselected(trial, state, at_end=False)
        if not routes:
            self._stats.unselected += 1
            return _NOTHING
        out = _NOTHING
        out_of_order: tuple[int, int, View] | None = None
        for view, indices in routes:
            step = event.step
            if view.global_numbering and event.global_step is not None:
                step = event.global_step
            series = (event.worker, view.key, event.name)
            last = state.last_step.get(series)
            if last is not None and step <= last:
                out_of_order = (step, last, view)
                continue
            state.last_step[series] = step
            obs = Observation(trial, event.worker, view.mode, event.name, step, event.collections,
                              event.ts, series, value, data, reductions)
            for index in indices:
                if state.stopped and index in state.stopped:
                    continue
                state.selected.add(index)
                finding = self.rules[index].observe(obs)
                if finding is not None:
                    alert = self._alert(index, finding, state)
                    if alert is not None:
                        if out is _NOTHING:
                            out = []
                        out.append(alert)
        if out_of_order is not None:  # counted once per event, whatever the number of views
            self._count_out_of_order(event, state, *out_of_order)
        return out

    def _route(self, name: str, collections: tuple[str, ...], mode: str) -> Routes:
        """Which views of which rules an event of this (name, collections, mode) feeds; cached."""
        selects = self._selects.get((name, collections))
        if selects is None:
            if len(self._selects) >= ROUTE_CACHE_LIMIT:
                self._selects.clear()
            selects = tuple(rule.selects(name, collections) for rule in self.rules)
            self._selects[(name, collections)] = selects
        by_view: dict[View, list[int]] = {}
        for index, rule in enumerate(self.rules):
            if selects[index]:
                for view in rule.views(mode):
                    by_view.setdefault(view, []).append(index)
        routes = tuple((view, tuple(indices)) for view, indices in by_view.items())
        if len(self._routes) >= ROUTE_CACHE_LIMIT:
            self._routes.clear()
        self._routes[(name, collections, mode)] = routes
        return routes

    def _count_out_of_order(self, event: ScalarEvent | TensorEvent, state: _TrialState,
                            step: int, last: int, view: View) -> None:
        kind = "duplicate" if step == last else "late"
        if kind == "late":
            self._stats.late += 1
            state.late += 1
        else:
            self._stats.duplicate += 1
            state.duplicate += 1
        self._say(state, kind, f"trial {event.trial!r}: {kind} step {step} of {event.name!r} "
                  f"(worker {event.worker}, {view.mode}) after step {last}; {kind} steps are "
                  f"counted and ignored, further ones only counted")

    def _alert(self, index: int, finding: Finding, state: _TrialState) -> AlertEvent | None:
        rule = self.rules[index]
        key = (index, finding.worker, finding.mode)
        fired = state.fired.get(key)
        if fired is None:
            fired = state.fired[key] = _FiredSteps()
        verdict = fired.add(finding.step)
        if verdict != "new":
            if verdict == "stale":
                self._stats.suppressed_findings += 1
            return None
        self._stats.alerts[rule.name] = self._stats.alerts.get(rule.name, 0) + 1
        if rule.stop_at_first:
            state.stopped.add(index)
            rule.forget(finding.trial)
        return AlertEvent(
            trial=finding.trial, ts=finding.event_ts,
            id=alert_id(finding.trial, rule.name, finding.worker, finding.mode, finding.step),
            rule=rule.name, rule_type=rule.rule_type, mode=finding.mode, step=finding.step,
            tensors=finding.tensors, message=finding.message, details=finding.details,
            event_ts=finding.event_ts, worker=finding.worker)

    # --- logs and metrics ---------------------------------------------------------------------

    def _on_log(self, event: LogEvent) -> list[Event]:
        trial = event.trial
        state = self._trials.get(trial)
        if state is None:
            state = self._new_trial(trial)
        key = (event.worker, event.stream, event.session)
        last = state.log_seq.get(key)
        if last is not None and event.seq <= last:
            self._stats.duplicate_log_lines += 1
            state.duplicate_lines += 1
            return _NOTHING
        state.log_seq[key] = event.seq
        state.workers.add(event.worker)
        out = self._metrics_of(event, state)
        if event.final:
            state.ended.add(event.worker)
            if state.ended >= state.workers:
                # Reported, not released here: the worker's last tensors travel on another topic
                # and may still be on their way. The sidecar releases the trial after a grace time.
                self._say(state, "ended", f"trial {trial!r} ended: its {len(state.workers)} "
                          f"worker(s) sent their end marker")
                self._ended.append(trial)
        return out

    def _metrics_of(self, event: LogEvent, state: _TrialState) -> list[Event]:
        """The metric events of one log line, each also fed to the rules as a series."""
        if self._extractor is None:
            return _NOTHING
        trial = event.trial
        values = self._extractor.extract(trial, event.line)
        for disabled_trial, name in self._extractor.drain_disabled():
            self._notices.append(
                f"trial {disabled_trial!r}: metric definition {name!r} exceeded its time budget of "
                f"{self.config.metric_time_budget_ms:g} ms on one line and is disabled for this "
                f"trial; the other definitions go on")
        if not values:
            return _NOTHING
        out: list[Event] = []
        for name, value in values:
            count_key = (event.worker, name)
            step = state.metric_counts.get(count_key, 0)
            state.metric_counts[count_key] = step + 1
            self._stats.metric_values += 1
            objective = name == self._objective_metric
            out.append(MetricEvent(trial, event.ts, name, value, step, event.worker,
                                   True if objective else None))
            if objective:
                self.objectives.record(trial, event.worker, step, value)
            series = ScalarEvent(trial, event.ts, "GLOBAL", step, name, value, event.worker,
                                 None, ("metrics",))
            out.extend(self._on_scalar(series))
        return out

    # --- bookkeeping --------------------------------------------------------------------------

    def _new_trial(self, trial: str) -> _TrialState:
        state = self._trials[trial] = _TrialState()
        if self.objectives is not None:
            self.objectives.saw_trial(trial)
        return state

    def _say(self, state: _TrialState, key: str, message: str) -> None:
        if key not in state.said:
            state.said.add(key)
            self._notices.append(message)

    def _say_unselected(self, trial: str, state: _TrialState, at_end: bool) -> None:
        seen = (f"in its {state.value_events} tensor/scalar events" if at_end
                else f"in its first {SELECTION_NOTICE_AFTER} tensor/scalar events")
        for index, rule in enumerate(self.rules):
            if index not in state.selected and index not in state.stopped:
                self._say(state, f"unselected:{index}",
                          f"trial {trial!r}: rule {rule.name!r} ({rule.rule_type}) selects no "
                          f"series {seen}; {rule.selection_hint()}")
