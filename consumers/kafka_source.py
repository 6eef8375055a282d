"""The sidecar's Kafka input: a consumer group over the tensors and logs topics.

Window state lives in memory, so a partition that this process gains (at start, after a crash of
another member, in a scale-out) is read again from its beginning: the events before the group's
committed offset only rebuild state (their outputs were published before that offset was
committed), the events after it are new. Offsets are looked up per named partition and tracked
here, because Tansu's offset-for-time and end-offset look-ups are unreliable.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from trainsentry.consumers.settings import KafkaSettings

log = logging.getLogger("trainsentry.sidecar")
STOP_COMMIT_TIMEOUT_S = 5.0


class KafkaSource(ConsumerRebalanceListener):
    """A group consumer that knows, per partition, up to which offset it is only rebuilding state."""

    def __init__(self, settings: KafkaSettings, topics: list[str],
                 on_partitions_lost: Callable[[set[TopicPartition]], None] = lambda tps: None) -> None:
        self.settings = settings
        self.topics = topics
        self.rebuild_until: dict[TopicPartition, int] = {}
        # Held while a batch is processed, delivered and committed, so a rebalance never cuts one.
        self.batch_lock = asyncio.Lock()
        self.rebalances = 0
        self._owned: set[TopicPartition] = set()
        self._on_partitions_lost = on_partitions_lost
        self._consumer: AIOKafkaConsumer | None = None
        self._commit_task: asyncio.Future | None = None
        self.failure: Exception | None = None  # set when a rebalance could not be followed safely

    async def start(self) -> None:
        # Made here, not in __init__: aiokafka clients belong to the running loop.
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=self.settings.group_id,
            client_id=self.settings.client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Range co-assigns partition k of the tensors and the logs topic: one trial, one owner.
            partition_assignment_strategy=(RangePartitionAssignor,),
            fetch_max_wait_ms=self.settings.fetch_max_wait_ms,
            fetch_max_bytes=self.settings.max_request_bytes,
            max_partition_fetch_bytes=self.settings.max_request_bytes,
            session_timeout_ms=self.settings.session_timeout_ms,
            heartbeat_interval_ms=self.settings.heartbeat_interval_ms,
            request_timeout_ms=self.settings.request_timeout_ms,
        )
        await self._consumer.start()
        self._consumer.subscribe(self.topics, listener=self)

    async def stop(self) -> None:
        try:
            # A commit sent just before the broker went away is retried until the consumer
            # closes: do not let it hold the exit.
            await asyncio.wait_for(self.settle_commit(), STOP_COMMIT_TIMEOUT_S)
        except asyncio.TimeoutError:
            log.warning("the last commit did not finish within %ss; the next owner resumes from "
                        "the one before it", STOP_COMMIT_TIMEOUT_S)
        if self._consumer is not None:
            await self._consumer.stop()

    def owns(self, tp: TopicPartition) -> bool:
        return tp in self._owned

    def mark_rebuilt(self, tp: TopicPartition) -> None:
        """``tp`` has been read up to its rebuild offset: its records are live from now on."""
        self.rebuild_until.pop(tp, None)

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list]:
        return await self._consumer.getmany(
            timeout_ms=timeout_ms, max_records=self.settings.max_batch_records)

    def commit_in_background(self, offsets: dict[TopicPartition, int]) -> None:
        """Start committing ``offsets``; call :meth:`settle_commit` first, so commits stay in order.

        The next batch is fetched and evaluated while the broker takes the commit: a commit round
        trip per batch is otherwise a tenth of the time on large records.
        """
        assert self._commit_task is None or self._commit_task.done(), "settle the last commit first"
        self._commit_task = asyncio.ensure_future(self.commit(offsets))

    async def settle_commit(self) -> None:
        """Wait for the commit started last, if any."""
        task, self._commit_task = self._commit_task, None
        if task is not None:
            await task

    async def commit(self, offsets: dict[TopicPartition, int]) -> bool:
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
        return True

    def lag(self, tp: TopicPartition, next_offset: int) -> int | None:
        """Records between ``next_offset`` and the partition's high watermark, if known."""
        high = self._consumer.highwater(tp)
        return None if high is None else max(0, high - next_offset)

    # -- ConsumerRebalanceListener -------------------------------------------------------------

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.batch_lock:  # let the batch in hand finish and commit first
            await self.settle_commit()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.rebalances += 1
        assigned_set = set(assigned)
        lost = self._owned - assigned_set
        gained = assigned_set - self._owned
        self._owned = assigned_set
        for tp in lost:
            self.rebuild_until.pop(tp, None)
        if lost:
            self._on_partitions_lost(lost)
        try:
            rebuilding = await self._prepare_rebuild(gained)
        except Exception as exc:  # aiokafka would only log it, and we would run with empty windows
            self.failure = exc
            log.error("cannot look up the committed offsets of the partitions gained (%s: %s); "
                      "stopping rather than evaluating them without their windows",
                      type(exc).__name__, exc)
            return
        if gained:
            log.info("assigned %d new partition(s): %s; rebuilding state for %d", len(gained),
                     ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(gained)),
                     len(rebuilding))

    async def _prepare_rebuild(self, gained: set[TopicPartition]) -> list[TopicPartition]:
        """Seek each gained partition with a committed offset to its beginning; those partitions."""
        for tp in sorted(gained):
            committed = await self._consumer.committed(tp)
            if committed:
                self.rebuild_until[tp] = committed
        rebuilding = [tp for tp in gained if tp in self.rebuild_until]
        if rebuilding:
            # An explicit seek: seek_to_beginning is lazy and loses to the committed position.
            for tp, offset in (await self._consumer.beginning_offsets(rebuilding)).items():
                self._consumer.seek(tp, offset)
        return rebuilding
