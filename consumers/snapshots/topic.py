"""The snapshots topic on Kafka: write a partition's snapshot, read back the newest of one key.

Input partition *k*'s snapshots go to partition ``k mod n`` of the snapshots topic (``n`` its
partition count), so the newest one is read from one partition, from its end backwards: the last
8 records first, then windows four times larger before them, at most :data:`MAX_SCANNED_RECORDS`
records in all. A compacted topic keeps about one record per key, so the newest is within the
first window; on a broker that does not compact (Tansu) the newest is still near the end, because
every owner writes its partitions' snapshots in turn. The end is the high watermark a fetch of the
last record reports: Tansu answers the end offset wrongly after a batch of several records
(the first offset of that batch, plus one), which is where that fetch starts.

Every snapshot is sent alone and acknowledged by every in-sync replica before its offsets are
committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from trainsentry.consumers.settings import KafkaSettings

FIRST_WINDOW = 8
MAX_SCANNED_RECORDS = 1_000
SCAN_POLL_MS = 200


def snapshot_topic_config(settings: KafkaSettings) -> Mapping[str, str]:
    """How the sidecar creates the snapshots topic: compacted (the newest record of each key is what
    matters), taking records as large as the sidecar sends, rolled hourly so compaction can run."""
    return {"cleanup.policy": "compact", "max.message.bytes": str(settings.max_request_bytes),
            "segment.ms": str(3_600_000)}


class SnapshotTopic:
    """Writes records to the snapshots topic and finds the newest record of a key in it."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.topic = settings.topics.snapshots
        self._producer: AIOKafkaProducer | None = None
        self._reader: AIOKafkaConsumer | None = None
        self._partitions: int | None = None

    async def start(self) -> None:
        settings = self.settings
        self._producer = AIOKafkaProducer(
            **settings.client_kwargs("snapshots"), acks="all", linger_ms=0,
            max_request_size=settings.max_request_bytes, request_timeout_ms=settings.request_timeout_ms)
        self._reader = AIOKafkaConsumer(
            **settings.client_kwargs("snapshots"), group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=settings.fetch_max_wait_ms,
            fetch_max_bytes=settings.max_request_bytes,
            max_partition_fetch_bytes=settings.max_request_bytes,
            request_timeout_ms=settings.request_timeout_ms)
        await self._producer.start()
        try:
            await self._reader.start()
        except BaseException:
            await self._producer.stop()
            raise

    async def stop(self) -> None:
        for client in (self._reader, self._producer):
            if client is not None:
                await client.stop()

    async def partition_of(self, input_partition: int) -> int:
        """The partition of this topic that holds the snapshots of ``input_partition``."""
        if self._partitions is None:
            partitions = await self._producer.partitions_for(self.topic)
            self._partitions = len(partitions)
        return input_partition % self._partitions

    async def write(self, key: bytes, value: bytes, input_partition: int) -> None:
        """Send one record and wait for its acknowledgement (raises the client's error)."""
        partition = await self.partition_of(input_partition)
        await self._producer.send_and_wait(self.topic, value, key=key, partition=partition)

    async def newest(self, key: bytes, input_partition: int) -> bytes | None:
        """The value of the newest record keyed ``key``, or ``None`` if none is found."""
        tp = TopicPartition(self.topic, await self.partition_of(input_partition))
        reader = self._reader
        reader.assign([tp])
        try:
            begin = (await reader.beginning_offsets([tp]))[tp]
            end = await self._end(tp, begin)
            window, scanned, stop = FIRST_WINDOW, 0, end
            while stop > begin and scanned < MAX_SCANNED_RECORDS:
                start = max(begin, stop - window, stop - (MAX_SCANNED_RECORDS - scanned))
                found, count = await self._scan(tp, key, start, stop)
                if found is not None:
                    return found
                scanned += count
                stop, window = start, window * 4
            return None
        finally:
            reader.unsubscribe()  # no fetching in the background until the next look-up

    async def _end(self, tp: TopicPartition, begin: int) -> int:
        """The offset after the last record of ``tp``."""
        reader = self._reader
        lower = (await reader.end_offsets([tp]))[tp]  # at worst the last batch's first offset, plus one
        if lower <= begin:
            return begin
        # The fetch that returns the record before ``lower`` reports the high watermark too.
        reader.seek(tp, lower - 1)
        await self._fetch_until(tp, lambda fetched: bool(fetched))
        return max(lower, reader.highwater(tp) or 0)

    async def _scan(self, tp: TopicPartition, key: bytes, start: int,
                    stop: int) -> tuple[bytes | None, int]:
        """The last value keyed ``key`` in offsets [start, stop), and how many records were read."""
        found: bytes | None = None
        count = 0

        def take(fetched: list) -> bool:
            nonlocal found, count
            for record in fetched:
                if record.offset >= stop:
                    return True
                count += 1
                if record.key == key:
                    found = record.value
            return bool(fetched) and fetched[-1].offset + 1 >= stop

        self._reader.seek(tp, start)
        await self._fetch_until(tp, take)
        return found, count

    async def _fetch_until(self, tp: TopicPartition, enough: Callable[[list], bool]) -> None:
        """Fetch ``tp`` until ``enough`` says so of the records of one fetch (within the request
        timeout, else :class:`TimeoutError`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.request_timeout_ms / 1000
        while True:
            fetched = await self._reader.getmany(tp, timeout_ms=SCAN_POLL_MS)
            if enough(fetched.get(tp, [])):
                return
            if loop.time() > deadline:
                raise TimeoutError(f"reading {tp.topic}[{tp.partition}] took over "
                                   f"{self.settings.request_timeout_ms} ms")
