"""Reading topics from their beginning outside any consumer group (topic replay, record, tail).

Reading "to the end" compares the offsets actually consumed with each partition's high watermark
as reported by the fetches themselves: Tansu's ``end_offsets`` is wrong when the last batch held
several records, the high watermark is right.

aiokafka is imported when a topic is read, not with this module: readers built on it (the
dashboard's feed) load without it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING

from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sources.base import Batch, Part, Source

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import ConsumerRecord

POLL_TIMEOUT_MS = 200


async def read_topics(settings: KafkaSettings, topics: Iterable[str], *, follow: bool = False,
                      keys: set[bytes] | None = None, stop: asyncio.Event | None = None,
                      positions: dict[TopicPartition, tuple[int, int | None]] | None = None,
                      ) -> AsyncIterator[list[ConsumerRecord]]:
    """Yield batches of records from the beginning of ``topics``.

    Without ``follow``, stops once every partition has been read up to its high watermark; with it,
    goes on until ``stop`` is set. ``keys`` keeps only records with one of those keys (trial ids).
    ``positions``, when given, is kept up to date with each partition's (next offset, high
    watermark) for a progress display. No group: the live sidecar's group and its offsets are left
    alone.
    """
    from aiokafka import AIOKafkaConsumer

    from trainsentry.consumers.broker import ensure_topics

    topics = list(topics)
    await ensure_topics(settings, topics)
    consumer = AIOKafkaConsumer(
        *topics,
        **settings.client_kwargs("reader"),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        fetch_max_bytes=settings.max_request_bytes,
        max_partition_fetch_bytes=settings.max_request_bytes,
        request_timeout_ms=settings.request_timeout_ms,
    )
    await consumer.start()
    try:
        next_offset: dict[TopicPartition, int] = {}
        while stop is None or not stop.is_set():
            batch = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS,
                                           max_records=settings.max_batch_records)
            out: list[ConsumerRecord] = []
            for tp, records in batch.items():
                next_offset[tp] = records[-1].offset + 1
                if keys is None:
                    out.extend(records)
                else:
                    out.extend(r for r in records if r.key in keys)
            if positions is not None:
                for tp in consumer.assignment():
                    positions[tp] = (next_offset.get(tp, 0), consumer.highwater(tp))
            if out:
                yield out
            if not follow and await _caught_up(consumer, next_offset):
                return
    finally:
        await consumer.stop()


class TopicSource(Source):
    """``topics`` from their beginning to their current end, as raw records for the driver.

    Bounded: :meth:`fetch` returns ``None`` once every partition has been read up to its high
    watermark. Nothing is committed (no group).
    """

    def __init__(self, settings: KafkaSettings, topics: Iterable[str],
                 keys: set[bytes] | None = None) -> None:
        self.topics = tuple(topics)
        self.positions: dict[TopicPartition, tuple[int, int | None]] = {}
        self._reader = read_topics(settings, self.topics, keys=keys, positions=self.positions)

    def position(self) -> tuple[int, int | None]:
        """(records read, records there) over every partition, as far as the fetches told."""
        return offsets_read(self.positions)

    async def stop(self) -> None:
        await self._reader.aclose()

    async def fetch(self) -> Batch | None:
        records = await anext(self._reader, None)
        return None if records is None else Batch([Part(self.topics, records)])


def offsets_read(positions: dict[TopicPartition, tuple[int, int | None]]) -> tuple[int, int | None]:
    """Sum of the next offsets and of the high watermarks (``None`` until every one is known)."""
    entries = list(positions.values())
    done = sum(offset for offset, _high in entries)
    highs = [high for _offset, high in entries]
    return done, (None if not highs or None in highs else sum(highs))


async def _caught_up(consumer: AIOKafkaConsumer, next_offset: dict[TopicPartition, int]) -> bool:
    assignment = consumer.assignment()
    if not assignment:
        return False
    for tp in assignment:
        high = consumer.highwater(tp)
        if high is None:
            return False  # no fetch answered for this partition yet
        if next_offset.get(tp, 0) < high:
            if tp not in next_offset:
                # Nothing read yet: the partition may start after 0 (retention), ask where.
                begin = (await consumer.beginning_offsets([tp]))[tp]
                next_offset[tp] = begin
                if begin < high:
                    return False
            else:
                return False
    return True
