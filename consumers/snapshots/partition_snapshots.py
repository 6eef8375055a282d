"""A sidecar's snapshots of its input partitions: when to take them, how to write and restore them.

The engine's state is held per trial, and a trial lives on one input partition *k* (of the tensors
and of the logs topic alike), so the state of partition *k* is the state of the trials seen on it.
Whoever holds them (the sidecar) offers it as a :class:`PartitionState`; this class turns it into
records of the snapshots topic and back, and logs, once per assignment, why a partition is read from
its beginning instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiokafka.errors import KafkaError

from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.state import SnapshotError

from .record import PartitionSnapshot, SnapshotRecordError, decode_partition_snapshot, snapshot_key
from .resume import unusable
from .schedule import SnapshotInterval, SnapshotSchedule
from .topic import SnapshotTopic

log = logging.getLogger("trainsentry.sidecar")


class PartitionState(Protocol):
    """The engine state of the trials of one input partition, as bytes and back."""

    def partition_state(self, partition: int) -> tuple[bytes, int]:
        """The engine's snapshot of the trials seen on ``partition``, and how many they are."""

    def restore_partition(self, partition: int, state: bytes) -> int:
        """Hold the trials of ``state`` as trials of ``partition``; how many. Raises
        :class:`~trainsentry.consumers.state.SnapshotError`, changing nothing, if it cannot."""


@dataclass(frozen=True)
class Restored:
    """What a partition was restored from: the snapshot's offsets per input topic."""

    offsets: Mapping[str, int]
    trials: int
    ts: float


class PartitionSnapshots:
    """Takes, writes and restores the snapshots of the input partitions this sidecar owns."""

    def __init__(self, settings: KafkaSettings, state: PartitionState, interval: SnapshotInterval,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.group = settings.group_id
        self.inputs = (settings.topics.tensors, settings.topics.logs)
        self.state = state
        self.schedule = SnapshotSchedule(interval, clock)
        self.topic = SnapshotTopic(settings)
        self.written = 0   # snapshots acknowledged by the broker
        self.restored = 0  # partitions restored from a snapshot
        self._failing: set[int] = set()  # partitions whose last snapshot could not be taken or written

    async def start(self) -> None:
        await self.topic.start()

    async def stop(self) -> None:
        await self.topic.stop()

    async def restore(self, partition: int, committed: Mapping[str, int | None]) -> Restored | None:
        """Restore ``partition``'s newest snapshot into the state; ``None`` (and one line in the log
        saying why) when there is no usable one and the partition must be read from its beginning.

        ``committed`` is the group's committed offset of each input topic's partition, if any.
        """
        where = f"partition {partition}"
        try:
            value = await self.topic.newest(snapshot_key(self.group, partition), partition)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("%s: cannot read its snapshots from %s (%s); rebuilding its state from the "
                        "beginning", where, self.topic.topic, exc or type(exc).__name__)
            return None
        if value is None:
            log.info("%s: no snapshot in %s; rebuilding its state from the beginning", where,
                     self.topic.topic)
            return None
        try:
            snapshot = decode_partition_snapshot(value, self.group, partition, self.inputs)
            problem = unusable(committed, snapshot.committed)
            if problem is not None:
                raise SnapshotRecordError(problem)
            trials = self.state.restore_partition(partition, snapshot.state)
        except (SnapshotRecordError, SnapshotError) as exc:
            log.warning("%s: its newest snapshot cannot be used (%s); rebuilding its state from the "
                        "beginning", where, exc)
            return None
        self.restored += 1
        log.info("%s: %d trial(s) restored from the snapshot of %s", where, trials,
                 ", ".join(f"{topic}@{offset}" for topic, offset in sorted(snapshot.offsets.items())))
        return Restored(dict(snapshot.offsets), trials, snapshot.ts)

    def take(self, partition: int, offsets: Mapping[str, int],
             committed: Mapping[str, int | None]) -> PartitionSnapshot | None:
        """The snapshot of ``partition``'s state now, which covers the records before ``offsets``
        while the group has ``committed`` (``None`` if the state cannot be taken: said once, until
        it can again)."""
        try:
            state, trials = self.state.partition_state(partition)
        except SnapshotError as exc:
            self._failed(partition, f"its state cannot be taken ({exc})")
            return None
        self.schedule.taken(partition)
        return PartitionSnapshot(self.group, partition, dict(offsets), dict(committed), state, trials,
                                 time.time())

    async def write(self, snapshots: Sequence[PartitionSnapshot]) -> None:
        """Write ``snapshots`` one after the other, each acknowledged; a failure is logged, not
        raised: recovery then starts from an older snapshot."""
        for snapshot in snapshots:
            partition = snapshot.partition
            try:
                await self.topic.write(snapshot_key(self.group, partition), snapshot.encode(), partition)
            except (KafkaError, OSError) as exc:
                self._failed(partition, f"writing its snapshot ({len(snapshot.state):,} bytes of "
                                        f"state) failed: {exc or type(exc).__name__}")
                continue
            self.written += 1
            if partition in self._failing:
                self._failing.discard(partition)
                log.info("partition %d: snapshots are written again", partition)

    def _failed(self, partition: int, why: str) -> None:
        if partition not in self._failing:
            self._failing.add(partition)
            log.warning("partition %d: %s; a successor will rebuild it from an older snapshot (said "
                        "once until a snapshot is written again)", partition, why)
