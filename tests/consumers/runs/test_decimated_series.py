"""A curve stays within its bound however long the run, and keeps its extremes and anomalies."""

from __future__ import annotations

import math

import numpy as np

from trainsentry.consumers.runs import DecimatedSeries


def test_a_million_steps_stay_within_twice_keep_points() -> None:
    curve = DecimatedSeries(keep=256)
    for step in range(1_000_000):
        curve.append(step, math.sin(step / 1000))
    assert len(curve) < 2 * 256
    assert curve.total == 1_000_000
    assert curve.nbytes() <= 2 * 256 * 16
    steps = curve.steps()
    assert steps == sorted(steps) and steps[-1] == 999_999  # ordered, the newest kept


def test_a_spike_and_a_nan_survive_decimation() -> None:
    curve = DecimatedSeries(keep=64)
    values = np.random.default_rng(0).normal(size=50_000)
    values[12_345] = 1e6
    values[33_333] = math.nan
    values[44_444] = -math.inf
    for step, value in enumerate(values):
        curve.append(step, float(value))
    kept = dict(zip(curve.steps(), curve.values(), strict=True))
    assert kept[12_345] == 1e6
    assert math.isnan(kept[33_333])
    assert kept[44_444] == -math.inf


def test_late_and_repeated_steps_are_refused_and_counted() -> None:
    curve = DecimatedSeries(keep=4)
    assert curve.append(5, 1.0)
    assert not curve.append(5, 2.0)
    assert not curve.append(3, 2.0)
    assert curve.append(6, 0.5)
    assert (curve.steps(), curve.refused) == ([5, 6], 2)
    assert curve.value_at(4) is None and curve.value_at(5) == 1.0 and curve.value_at(100) == 0.5
