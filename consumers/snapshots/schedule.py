"""When a partition's state is due for a snapshot: every so many records, or every so many seconds.

A partition is due once it has evaluated ``every_records`` records since its last snapshot (its
assignment counts as one), or once ``every_seconds`` have passed since then and it has evaluated
at least one record. Counting records, not batches, bounds what a successor re-reads after a crash:
at most ``every_records`` plus one batch, or what arrives in ``every_seconds``.

>>> clock = iter([0.0, 1.0, 2.0, 9.0]).__next__
>>> schedule = SnapshotSchedule(SnapshotInterval(every_records=100, every_seconds=5.0), clock)
>>> schedule.started(3)                          # assigned at t=0
>>> schedule.evaluated(3, 60), schedule.due(3)   # t=1: 60 records
(None, False)
>>> schedule.evaluated(3, 60), schedule.due(3)   # 120 records
(None, True)
>>> schedule.taken(3), schedule.changed(3)     # t=2
(None, False)
>>> schedule.evaluated(3, 1), schedule.due(3)    # t=9: one record, 7 s after the snapshot
(None, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SnapshotInterval:
    """How often a partition's state is written: whichever of the two comes first."""

    every_records: int
    every_seconds: float

    def __post_init__(self) -> None:
        if self.every_records < 1:
            raise ValueError(f"snapshot interval: expected records >= 1, got {self.every_records!r}")
        if not self.every_seconds > 0:
            raise ValueError(f"snapshot interval: expected seconds > 0, got {self.every_seconds!r}")


class SnapshotSchedule:
    """Per input partition: records evaluated and time passed since its last snapshot."""

    def __init__(self, interval: SnapshotInterval, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._records: dict[int, int] = {}
        self._since: dict[int, float] = {}

    def started(self, partition: int) -> None:
        """``partition`` was assigned: its state is the snapshot it was restored from, or empty."""
        self._records[partition] = 0
        self._since[partition] = self._clock()

    def evaluated(self, partition: int, records: int) -> None:
        """The engine evaluated ``records`` more records of ``partition``."""
        if partition in self._records:
            self._records[partition] += records

    def changed(self, partition: int) -> bool:
        """Whether ``partition`` evaluated records since its last snapshot."""
        return self._records.get(partition, 0) > 0

    def due(self, partition: int) -> bool:
        records = self._records.get(partition, 0)
        if records <= 0:
            return False
        return (records >= self.interval.every_records
                or self._clock() - self._since[partition] >= self.interval.every_seconds)

    def taken(self, partition: int) -> None:
        """A snapshot of ``partition``'s state, as it is now, was taken."""
        self.started(partition)

    def forget(self, partition: int) -> None:
        """``partition`` went to another member."""
        self._records.pop(partition, None)
        self._since.pop(partition, None)

    def partitions(self) -> list[int]:
        return sorted(self._records)
