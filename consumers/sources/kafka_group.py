"""The sidecar's input: a consumer group over the tensors and logs topics.

Window state lives in memory. A partition this process gains (at start, after a crash of another
member, in a scale-out) has its state restored from its newest snapshot and is read from the offsets
that snapshot covers; without a usable snapshot, it is read again from its beginning
(:mod:`trainsentry.consumers.snapshots`). Either way the records before the group's committed
offset only rebuild state (their outputs were published before that offset was committed), the
records after it are new. A gained partition is paused, and handed to no batch, until it is
positioned and its state restored.

Snapshots are taken between batches, once a batch's outputs are acknowledged, and written before
its offsets are committed (both in the background, while the next batch is evaluated). Offsets
are looked up per named partition and tracked here, because Tansu's offset-for-time and end-offset
look-ups are unreliable.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.protocol.group import LeaveGroupRequest

from trainsentry.consumers.broker import BrokerError
from trainsentry.consumers.records import KafkaRecord
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.snapshots import (
    PartitionSnapshot,
    PartitionSnapshots,
    ResumePoint,
    from_snapshot,
    from_the_beginning,
)
from trainsentry.consumers.sources.base import Batch, Part, Source

log = logging.getLogger("trainsentry.sidecar")
STOP_COMMIT_TIMEOUT_S = 5.0
SNAPSHOT_WRITE_TIMEOUT_S = 5.0  # on revocation and stop: the group, or the exit, waits this long at most
LEAVE_TIMEOUT_S = 2.0


class ConsumerGroupSource(Source, ConsumerRebalanceListener):
    """A group consumer that knows, per partition, up to which offset it is only rebuilding state.

    Each part's lane is its :class:`TopicPartition`. A commit goes out in the background: the
    next batch is fetched and evaluated while the broker takes it (a commit round trip per batch is
    otherwise a tenth of the time on large records), and each commit waits for the one before.
    With ``snapshots``, the state of the input partitions is snapshotted and restored through it.
    """

    def __init__(self, settings: KafkaSettings, topics: list[str], poll_timeout_ms: int = 200,
                 on_partitions_lost: Callable[[set[TopicPartition]], None] = lambda tps: None,
                 snapshots: PartitionSnapshots | None = None) -> None:
        self.settings = settings
        self.topics = topics
        self.poll_timeout_ms = poll_timeout_ms
        self.snapshots = snapshots
        self.rebuild_until: dict[TopicPartition, int] = {}
        # Per owned partition, the offset of the next record whose effect the state does not hold.
        self._positions: dict[TopicPartition, int] = {}
        # Per owned partition, the group's committed offset as this member last knew it.
        self._committed: dict[TopicPartition, int | None] = {}
        # Input partitions whose state ran ahead of their positions (a batch evaluated, then not
        # committed: the run is stopping): no snapshot may be taken of them any more.
        self._diverged: set[int] = set()
        self._in_hand: set[int] = set()  # input partitions of the batch being processed
        self._rebuild_from: dict[TopicPartition, int] = {}
        self._rebuild_read: dict[TopicPartition, int] = {}
        self.rebuilt_records = 0  # records evaluated only to rebuild state, since the start
        self.assigned_at: float | None = None   # time.monotonic() of the last assignment
        self.caught_up_at: float | None = None  # when every partition of it was rebuilt
        # Held while a batch is processed, delivered and committed, so a rebalance never cuts one.
        self.batch_lock = asyncio.Lock()
        self.rebalances = 0
        self.joined = False  # in the group, with the partitions of the last assignment
        self._owned: set[TopicPartition] = set()
        self._on_partitions_lost = on_partitions_lost
        self._consumer: AIOKafkaConsumer | None = None
        self._commit_task: asyncio.Future | None = None
        self.failure: Exception | None = None  # set when a rebalance could not be followed safely

    async def start(self) -> None:
        if self.snapshots is not None:
            await self.snapshots.start()
        try:
            await self._start_consumer()
        except BaseException:
            if self.snapshots is not None:
                await self.snapshots.stop()
            raise

    async def _start_consumer(self) -> None:
        # Made here, not in __init__: aiokafka clients belong to the running loop.
        self._consumer = AIOKafkaConsumer(
            **self.settings.client_kwargs(),
            group_id=self.settings.group_id,
            group_instance_id=self.settings.group_instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Range co-assigns partition k of the tensors and the logs topic: one trial, one owner.
            partition_assignment_strategy=(RangePartitionAssignor,),
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            fetch_max_bytes=self.settings.max_request_bytes,
            max_partition_fetch_bytes=self.settings.max_request_bytes,
            session_timeout_ms=self.settings.session_timeout_ms,
            heartbeat_interval_ms=self.settings.heartbeat_interval_ms,
            rebalance_timeout_ms=self.settings.rebalance_timeout_ms,
            request_timeout_ms=self.settings.request_timeout_ms,
        )
        await self._consumer.start()
        self._consumer.subscribe(self.topics, listener=self)

    async def stop(self) -> None:
        try:
            try:
                # A commit sent just before the broker went away is retried until the consumer
                # closes: do not let it hold the exit.
                await asyncio.wait_for(self._settle_commit(), STOP_COMMIT_TIMEOUT_S)
            except TimeoutError:
                log.warning("the last commit did not finish within %ss; the next owner resumes "
                            "from the one before it", STOP_COMMIT_TIMEOUT_S)
            else:
                await self._snapshot_changed()  # the next owner (this sidecar restarted) rebuilds nothing
        finally:
            try:
                await self._stop_consumer()
            finally:
                if self.snapshots is not None:
                    await self.snapshots.stop()

    async def _stop_consumer(self) -> None:
        if self._consumer is not None:
            await self._leave_group()
            try:
                await self._consumer.stop()
            except asyncio.CancelledError:
                # With the broker gone, aiokafka's fetcher re-raises the cancellation of its own
                # pending fetch from stop(); only a cancellation of this task is ours to pass on.
                if asyncio.current_task().cancelling():
                    raise

    async def _leave_group(self) -> None:
        """Leave the group now, so that a successor (this sidecar restarted) is not kept waiting.

        aiokafka leaves on stop only from a generation above 0, and Tansu numbers a group's first
        generation 0: without this, a sidecar restarted with the same group id waited for this
        member's session to expire plus a rebalance round (18 s at a 10 s session). A static
        member (``group_instance_id``) keeps its place instead, for its successor to take back.
        """
        coordinator = getattr(self._consumer, "_coordinator", None)  # aiokafka has no public way
        if (coordinator is None or self.settings.group_instance_id is not None
                or coordinator.generation != 0 or not coordinator.member_id):
            return
        try:
            await asyncio.wait_for(coordinator._send_req(
                LeaveGroupRequest(self.settings.group_id, coordinator.member_id)), LEAVE_TIMEOUT_S)
        except (KafkaError, OSError, TimeoutError) as exc:  # the session expires on its own then
            log.debug("leaving group %r failed: %s", self.settings.group_id, exc)

    def readiness(self, silent_after_s: float) -> str | None:
        """``None`` when the group is joined, every assigned partition is rebuilt and a fetch was
        answered within ``silent_after_s``; else what is missing, in a few words."""
        if self._consumer is None or not self.joined:
            return "not in the consumer group (joining)"
        if self.rebuild_until:
            return f"rebuilding the state of {len(self.rebuild_until)} partition(s)"
        answered = [self._consumer.last_poll_timestamp(tp) for tp in self._consumer.assignment()]
        answered = [ms for ms in answered if ms is not None]
        if answered:
            silent = time.time() - max(answered) / 1000
            if silent > silent_after_s:
                return f"no fetch answered for {silent:.0f}s (the broker is unreachable?)"
        return None

    async def fetch(self) -> Batch:
        fetched = await self._consumer.getmany(
            timeout_ms=self.poll_timeout_ms, max_records=self.settings.max_batch_records)
        if self.failure is not None:
            raise BrokerError(f"lost track of the group's offsets: {self.failure}")
        return Batch([Part(tp, records) for tp, records in fetched.items()])

    @contextlib.asynccontextmanager
    async def hold(self, batch: Batch) -> AsyncIterator[Batch]:
        async with self.batch_lock:
            # One turn of the event loop lets the consumer send its next fetch now, so the broker
            # serves it while this batch is evaluated.
            await asyncio.sleep(0)
            # A rebalance may have taken partitions while this batch waited for the lock.
            owned = [part for part in batch.parts if part.lane in self._owned]
            for part in owned:
                part.rebuild_below = self.rebuild_until.get(part.lane)
            self._in_hand = {part.lane.partition for part in owned}
            try:
                yield Batch(owned)
            finally:
                self._diverged |= self._in_hand  # left without a commit
                self._in_hand = set()

    async def commit(self, batch: Batch) -> None:
        self._in_hand = set()
        offsets: dict[TopicPartition, int] = {}
        evaluated: dict[int, int] = defaultdict(int)
        for part in batch.parts:
            tp, next_offset = part.lane, part.records[-1].offset + 1
            self._positions[tp] = next_offset
            evaluated[tp.partition] += len(part.records)
            if part.rebuild_below is None:
                offsets[tp] = next_offset
                continue
            read = _below(part.records, part.rebuild_below)
            self.rebuilt_records += read
            self._rebuild_read[tp] = self._rebuild_read.get(tp, 0) + read
            if next_offset >= part.rebuild_below:  # never commit below what was committed before
                offsets[tp] = next_offset
                self.rebuild_until.pop(tp, None)
                log.info("%s[%d]: state rebuilt up to offset %d (%d records read from offset %d); "
                         "now live", tp.topic, tp.partition, part.rebuild_below,
                         self._rebuild_read.pop(tp, 0), self._rebuild_from.pop(tp, 0))
                if not self.rebuild_until and self.caught_up_at is None:
                    self.caught_up_at = time.monotonic()
        taken = self._due_snapshots(evaluated)
        await self._settle_commit()
        self._commit_task = asyncio.ensure_future(self._write_and_commit(taken, offsets))

    def lag(self, tp: TopicPartition, next_offset: int) -> int | None:
        """Records between ``next_offset`` and the partition's high watermark, if known."""
        high = self._consumer.highwater(tp)
        return None if high is None else max(0, high - next_offset)

    async def _settle_commit(self) -> None:
        """Wait for the commit started last, if any."""
        task, self._commit_task = self._commit_task, None
        if task is not None:
            await task

    async def _write_and_commit(self, taken: Sequence[PartitionSnapshot],
                                offsets: dict[TopicPartition, int]) -> bool:
        """Write the snapshots taken after a batch, then commit its offsets."""
        if taken:
            await self.snapshots.write(taken)
        return await self._commit(offsets)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> bool:
        """Commit the offsets of partitions still owned; ``False`` if the group moved on meanwhile."""
        owned = {tp: off for tp, off in offsets.items() if tp in self._owned}
        if not owned:
            return True
        try:
            await self._consumer.commit(owned)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # The new owner re-reads from the last commit: the repeats carry the same alert ids.
            log.warning("commit of %d partition(s) failed (%s); their new owner will resume from "
                        "the last commit", len(owned), exc)
            return False
        self._committed.update((tp, offset) for tp, offset in owned.items() if tp in self._owned)
        return True

    # -- snapshots -----------------------------------------------------------------------------

    def _due_snapshots(self, evaluated: dict[int, int]) -> list[PartitionSnapshot]:
        """Snapshots of the owned partitions due one, after a batch that evaluated ``evaluated``
        records of each input partition."""
        if self.snapshots is None:
            return []
        schedule = self.snapshots.schedule
        for partition, records in evaluated.items():
            schedule.evaluated(partition, records)
        due = [partition for partition in schedule.partitions() if schedule.due(partition)]
        return [snapshot for snapshot in map(self._take, due) if snapshot is not None]

    def _take(self, partition: int) -> PartitionSnapshot | None:
        """The snapshot of input ``partition`` now, if its state is known to match its positions."""
        tps = [TopicPartition(topic, partition) for topic in self.topics]
        if partition in self._diverged or not all(tp in self._owned and tp in self._positions
                                                  for tp in tps):
            return None
        return self.snapshots.take(partition, {tp.topic: self._positions[tp] for tp in tps},
                                   {tp.topic: self._committed.get(tp) for tp in tps})

    async def _snapshot_changed(self) -> None:
        """Write the snapshots of the owned partitions that changed since their last one (on
        revocation and stop, once the last commit is settled)."""
        if self.snapshots is None:
            return
        schedule = self.snapshots.schedule
        taken = [snapshot for partition in schedule.partitions() if schedule.changed(partition)
                 if (snapshot := self._take(partition)) is not None]
        if not taken:
            return
        try:
            await asyncio.wait_for(self.snapshots.write(taken), SNAPSHOT_WRITE_TIMEOUT_S)
        except TimeoutError:
            log.warning("writing the snapshots of %d partition(s) took over %ss; their next owner "
                        "rebuilds them from older ones", len(taken), SNAPSHOT_WRITE_TIMEOUT_S)

    # -- ConsumerRebalanceListener -------------------------------------------------------------

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.joined = False  # rejoining: the session expired, or another member came or went
        async with self.batch_lock:  # let the batch in hand finish and commit first
            await self._settle_commit()
            await self._snapshot_changed()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.rebalances += 1
        self.assigned_at, self.caught_up_at = time.monotonic(), None
        assigned_set = set(assigned)
        lost = self._owned - assigned_set
        gained = assigned_set - self._owned
        # Gained partitions are neither fetched nor handed to a batch before they are prepared.
        self._owned = assigned_set - gained
        self._consumer.pause(*gained)
        for tp in lost:
            for held in (self.rebuild_until, self._positions, self._committed, self._rebuild_from,
                         self._rebuild_read):
                held.pop(tp, None)
        if self.snapshots is not None:
            for partition in {tp.partition for tp in lost} - {tp.partition for tp in assigned_set}:
                self.snapshots.schedule.forget(partition)
        if lost:
            self._on_partitions_lost(lost)
        try:
            rebuilding, from_snapshots = await self._prepare(gained)
        except Exception as exc:  # aiokafka would only log it, and we would run with empty windows
            self.failure = exc
            log.error("cannot look up the committed offsets of the partitions gained (%s: %s); "
                      "stopping rather than evaluating them without their windows",
                      type(exc).__name__, exc)
            return
        self._owned = assigned_set
        self._consumer.resume(*gained)
        self.joined = True
        if not self.rebuild_until:
            self.caught_up_at = time.monotonic()
        if gained:
            log.info("assigned %d new partition(s): %s; rebuilding state for %d (%d input "
                     "partition(s) from a snapshot)", len(gained),
                     ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(gained)), rebuilding,
                     from_snapshots)

    async def _prepare(self, gained: set[TopicPartition]) -> tuple[int, int]:
        """Restore the state of the gained partitions and seek each where its reading starts;
        (partitions with committed offsets, input partitions restored from a snapshot)."""
        if not gained:
            return 0, 0
        ordered = sorted(gained)
        committed = {tp: await self._consumer.committed(tp) for tp in ordered}
        beginning = await self._consumer.beginning_offsets(ordered)
        points: dict[TopicPartition, ResumePoint] = {}
        from_snapshots = 0
        for partition in sorted({tp.partition for tp in ordered}):
            tps = [tp for tp in ordered if tp.partition == partition]
            self._diverged.discard(partition)
            restored = None
            if self.snapshots is not None:
                self.snapshots.schedule.started(partition)
                # Only a partition with committed offsets has a history to restore; both of its
                # input partitions must be gained together (the range assignor gives them so).
                if len(tps) == len(self.topics) and any(committed[tp] is not None for tp in tps):
                    restored = await self.snapshots.restore(
                        partition, {tp.topic: committed[tp] for tp in tps})
            from_snapshots += restored is not None
            for tp in tps:
                points[tp] = (from_the_beginning(committed[tp], beginning[tp]) if restored is None
                              else from_snapshot(committed[tp], beginning[tp], restored.offsets[tp.topic]))
        self._committed.update(committed)
        for tp, point in points.items():
            # An explicit seek for every gained partition: seek_to_beginning is lazy and loses to
            # the committed position, and records fetched while it was prepared are dropped.
            self._consumer.seek(tp, point.seek)
            self._positions[tp] = point.seek
            if point.rebuild_until is not None:
                self.rebuild_until[tp] = point.rebuild_until
                self._rebuild_from[tp], self._rebuild_read[tp] = point.seek, 0
        return sum(committed[tp] is not None for tp in ordered), from_snapshots


def _below(records: Sequence[KafkaRecord], offset: int) -> int:
    """How many of ``records`` (in offset order) are below ``offset``."""
    return bisect.bisect_left(records, offset, key=lambda record: record.offset)
