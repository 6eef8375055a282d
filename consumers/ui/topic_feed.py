"""Filling the dashboard's collection from the topics: tensors, logs, metrics and alerts, from their
beginning, then following them.

The logs topic is read for its end markers (``final``), which say a trial has ended; its lines are
not kept. No consumer group: the sidecar's offsets are left alone, and every dashboard sees the
whole history the topics still hold. A record that is not a valid event is counted and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from trainsentry.consumers.records import DeadLetter, decode_record
from trainsentry.consumers.runs import RunCollection
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sources.topic_reader import read_topics

YIELD_EVERY = 256  # records decoded between two chances for the server to answer


@dataclass
class FeedCounters:
    records: int = 0
    invalid: int = 0
    last_invalid: str | None = None


async def follow_topics(settings: KafkaSettings, collection: RunCollection, stop: asyncio.Event,
                        counters: FeedCounters) -> None:
    """Read the four topics into ``collection`` until ``stop`` is set."""
    topics = settings.topics
    names = [topics.tensors, topics.logs, topics.metrics, topics.alerts]
    reader = read_topics(settings, names, follow=True, stop=stop)
    async with contextlib.aclosing(reader):
        async for records in reader:
            for index, record in enumerate(records):
                counters.records += 1
                item = decode_record(record)
                if isinstance(item, DeadLetter):
                    counters.invalid += 1
                    counters.last_invalid = f"{record.topic}[{record.partition}]@{record.offset}: {item.reason}"
                else:
                    collection.observe(item)
                if index % YIELD_EVERY == YIELD_EVERY - 1:
                    await asyncio.sleep(0)
