"""The collection the dashboard and the report fill: bounds, status, alerts, objective, statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainsentry.consumers.runs import Limits, RunCollection, SeriesKey
from trainsentry.protocol import AlertEvent, LogEvent, MetricEvent, ScalarEvent, TensorEvent


def alert(trial: str, step: int, severity: str | None = None, id: str | None = None) -> AlertEvent:
    event = AlertEvent(trial=trial, ts=100.0 + step, id=id or f"{trial}-{step}", rule="LossNotDecreasing",
                       rule_type="LossNotDecreasing", mode="TRAIN", step=step, tensors=("loss",),
                       message="loss did not decrease", details={"threshold": 0.5, "value": math.nan},
                       event_ts=100.0 + step)
    if severity is not None:
        object.__setattr__(event, "severity", severity) if hasattr(event, "severity") else None
    return event


def test_trials_are_bounded_and_ended_ones_go_first() -> None:
    runs = RunCollection(Limits(trials=2))
    runs.observe(ScalarEvent("ended", 50.0, "TRAIN", 0, "loss", 1.0))
    runs.observe(LogEvent("ended", 51.0, "stdout", "bye", 0, final=True))
    runs.observe(ScalarEvent("quiet", 10.0, "TRAIN", 0, "loss", 1.0))  # older, but not ended
    runs.observe(ScalarEvent("new", 60.0, "TRAIN", 0, "loss", 1.0))
    assert set(runs.trials) == {"quiet", "new"} and runs.evicted == 1
    runs.observe(ScalarEvent("newer", 61.0, "TRAIN", 0, "loss", 1.0))
    assert set(runs.trials) == {"new", "newer"} and runs.evicted == 2


def test_series_per_trial_are_bounded_and_the_rest_counted() -> None:
    runs = RunCollection(Limits(series_per_trial=3))
    for index in range(5):
        runs.observe(ScalarEvent("t", 1.0, "TRAIN", 0, f"s{index}", 1.0))
    record = runs.trials["t"]
    assert len(record.series) == 3 and record.series_dropped == 2


def test_status_running_stalled_and_ended() -> None:
    runs = RunCollection(stalled_after=30.0)
    for worker in ("0", "1"):
        runs.observe(ScalarEvent("t", 100.0, "TRAIN", 3, "loss", 1.0, worker))
    assert runs.summaries(now=120.0)[0]["status"] == "running"
    assert runs.summaries(now=131.0)[0]["status"] == "stalled"
    runs.observe(LogEvent("t", 100.0, "stdout", "done", 0, "0", final=True))
    assert runs.summaries(now=131.0)[0]["status"] == "stalled"  # worker 1 has not ended
    runs.observe(LogEvent("t", 100.0, "stdout", "done", 0, "1", final=True))
    summary = runs.summaries(now=131.0)[0]
    assert summary["status"] == "ended" and summary["workers_ended"] == ["0", "1"]
    assert summary["last_step"] == 3 and summary["modes"] == ["TRAIN"]


def test_alerts_are_kept_once_by_id_and_counted_by_severity() -> None:
    runs = RunCollection(Limits(alerts_per_trial=2))
    for step in range(4):
        runs.observe(alert("t", step))
    runs.observe(alert("t", 3))  # delivered twice (at least once)
    record = runs.trials["t"]
    assert [a.step for a in record.alerts] == [2, 3]  # the newest kept
    assert record.alert_counts == {"error": 0, "warning": 4, "info": 0}  # no severity: warning
    assert record.alerts_by_rule == {"LossNotDecreasing": 4}


def test_objective_final_and_best_follow_the_direction() -> None:
    runs = RunCollection(objective_type="Maximize")
    for step, value in enumerate([0.5, 0.9, 0.7, math.nan]):
        runs.observe(MetricEvent("t", 1.0 + step, "accuracy", value, step, objective=True))
    objective = runs.summaries(now=10.0)[0]["objective"]
    assert objective == {"metric": "accuracy", "type": "Maximize", "final": 0.7, "final_step": 2,
                         "best": 0.9, "best_step": 1}
    metric = runs.trials["t"].series[SeriesKey("metric", "accuracy", "0", "GLOBAL")]
    assert metric.steps() == [0, 1, 2, 3] and math.isnan(metric.values()[3])


def test_weights_become_five_statistics_and_one_value_tensors_a_scalar() -> None:
    runs = RunCollection()
    weights = np.array([[1.0, 0.0], [np.inf, -3.0]], dtype=np.float32)
    runs.observe(TensorEvent.from_array(weights, trial="t", ts=1.0, mode="TRAIN", step=2,
                                        name="fc1.weight", collections=("weights",)))
    runs.observe(TensorEvent.from_array(np.array([0.25]), trial="t", ts=1.0, mode="EVAL", step=0,
                                        name="loss", collections=("losses",)))
    runs.observe(TensorEvent("t", 1.0, "TRAIN", 2, "fc1.weight.grad", collections=("gradients",),
                             reductions={"l2": 2.0, "l1": 3.0, "count": 4.0, "std": 0.5, "nan_count": 1.0}))
    runs.observe(TensorEvent.from_array(np.ones((2, 2)), trial="t", ts=1.0, mode="TRAIN", step=2,
                                        name="relu_input"))
    series = runs.trials["t"].series
    value = {key.kind: s.values()[0] for key, s in series.items() if key.name == "fc1.weight"}
    assert value["norm"] == pytest.approx(math.sqrt(10.0))
    assert value["mean_abs"] == pytest.approx(4.0 / 3.0)
    assert value["zeros"] == 0.25 and value["nonfinite"] == 1.0
    grad = {key.kind: s.values()[0] for key, s in series.items() if key.name == "fc1.weight.grad"}
    assert grad == {"norm": 2.0, "mean_abs": 0.75, "variance": 0.25, "nonfinite": 1.0}
    assert series[SeriesKey("scalar", "loss", "0", "EVAL")].values() == [0.25]
    assert runs.not_charted == 1  # an activation is neither a value nor a weight or gradient


def test_changes_are_drained_once_and_a_backlog_becomes_a_reset() -> None:
    runs = RunCollection(Limits(pending_changes=10))
    runs.observe(ScalarEvent("t", 1.0, "TRAIN", 0, "loss", math.inf))
    changed, changes = runs.drain_changes()
    assert changed and changes["t"].points == [(0, 0, None)] and changes["t"].series[0]["name"] == "loss"
    assert runs.drain_changes() == (False, {})
    for step in range(1, 50):
        runs.observe(ScalarEvent("t", 1.0, "TRAIN", step, "loss", 1.0))
    assert runs.drain_changes()[1]["t"].reset
