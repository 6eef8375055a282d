"""Reading topics from their beginning outside any consumer group (replay, record, tail).

Reading "to the end" compares the offsets actually consumed with each partition's high watermark
as reported by the fetches themselves: Tansu's ``end_offsets`` is wrong when the last batch held
several records, the high watermark is right.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from trainsentry.consumers.broker import ensure_topics
from trainsentry.consumers.settings import KafkaSettings


async def read_topics(settings: KafkaSettings, topics: Iterable[str], *, follow: bool = False,
                      keys: set[bytes] | None = None,
                      stop: asyncio.Event | None = None) -> AsyncIterator[list[ConsumerRecord]]:
    """Yield batches of records from the beginning of ``topics``.

    Without ``follow``, stops once every partition has been read up to its high watermark; with it,
    goes on until ``stop`` is set. ``keys`` keeps only records with one of those keys (trial ids).
    No group: the live sidecar's group and its offsets are left alone.
    """
    topics = list(topics)
    await ensure_topics(settings.bootstrap_servers, topics)
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        client_id=f"{settings.client_id}-reader",
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
            batch = await consumer.getmany(timeout_ms=200, max_records=settings.max_batch_records)
            out: list[ConsumerRecord] = []
            for tp, records in batch.items():
                next_offset[tp] = records[-1].offset + 1
                if keys is None:
                    out.extend(records)
                else:
                    out.extend(r for r in records if r.key in keys)
            if out:
                yield out
            if not follow and await _caught_up(consumer, next_offset):
                return
    finally:
        await consumer.stop()


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
