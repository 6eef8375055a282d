"""Outputs for the sink tests: alerts and a metric of trial ``j``."""

from __future__ import annotations

from tests.streams import T0
from trainsentry.protocol import AlertEvent, MetricEvent


def alert(step: int, trial: str = "j") -> AlertEvent:
    return AlertEvent(trial=trial, ts=T0 + step, id=f"id-{step}", rule="r", rule_type="r", mode="TRAIN",
                      step=step, tensors=("loss",), message="m", details={"x": float("inf")},
                      event_ts=T0 + step)


def metric(trial: str = "j") -> MetricEvent:
    return MetricEvent(trial=trial, ts=T0, name="val", value=0.5, step=0)
