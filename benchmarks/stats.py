"""Small statistics over measurements: medians, percentiles, rates between two instants."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class BatchClock:
    """Records per second over a stream of batches, counted from the end of the first batch.

    The first batch carries start-up effects (connections, group join, buffers filling), so its
    records and the time before it are left out: rate = records after it / time after it.
    """

    expected: int
    records: int = 0
    first_batch_records: int = 0
    first_done: float | None = None
    last_done: float | None = None
    batches: int = 0

    def batch_done(self, records: int) -> None:
        now = time.perf_counter()
        self.records += records
        self.batches += 1
        if self.first_done is None:
            self.first_done, self.first_batch_records = now, records
        self.last_done = now

    @property
    def done(self) -> bool:
        return self.records >= self.expected

    @property
    def rate(self) -> float:
        if self.first_done is None or self.last_done is None or self.last_done <= self.first_done:
            return math.nan
        return (self.records - self.first_batch_records) / (self.last_done - self.first_done)


@dataclass
class Paired:
    """Rounds of (baseline, measured) rates taken back to back; the median of the per-round ratios."""

    baseline: list[float] = field(default_factory=list)
    measured: list[float] = field(default_factory=list)

    def add(self, baseline: float, measured: float) -> None:
        self.baseline.append(baseline)
        self.measured.append(measured)

    @property
    def ratios(self) -> list[float]:
        return [m / b for b, m in zip(self.baseline, self.measured)]

    @property
    def median_ratio(self) -> float:
        return median(self.ratios)
