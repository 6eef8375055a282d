"""The broker the benchmarks talk to, and the Kafka plumbing they share.

Every benchmark uses its own topics under a fresh prefix and deletes them afterwards: the embedded
broker keeps everything in memory, and each fetch scans every batch stored in a partition.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from aiokafka import AIOKafkaProducer

from trainsentry.consumers.broker import EmbeddedBroker, bootstrap_from_env, delete_topics, ensure_topics
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.protocol import Topics

# A Tansu rebalance round takes about session_timeout_ms / 2: short timeouts keep joins at ~1 s.
SESSION_TIMEOUT_MS = 2000
HEARTBEAT_INTERVAL_MS = 500


@contextmanager
def cluster() -> Iterator[str]:
    """``$KAFKA_BOOTSTRAP_SERVERS`` if set, else an embedded broker for the duration of the block."""
    existing = bootstrap_from_env()
    if existing:
        yield existing
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers


def fresh_topics(label: str) -> Topics:
    return Topics(prefix=f"bench-{label}-{uuid.uuid4().hex[:8]}")


def sidecar_settings(bootstrap_servers: str, topics: Topics = Topics(), group_id: str | None = None,
                     **overrides: Any) -> KafkaSettings:
    """The sidecar's own defaults, with short group timeouts."""
    return KafkaSettings(bootstrap_servers=bootstrap_servers, topics=topics,
                         group_id=group_id or f"bench-{uuid.uuid4().hex[:8]}",
                         session_timeout_ms=SESSION_TIMEOUT_MS,
                         heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS, **overrides)


def fetch_options(settings: KafkaSettings) -> dict[str, Any]:
    """The consumer options that decide what a fetch returns, exactly as the sidecar sets them."""
    return dict(fetch_max_wait_ms=settings.fetch_max_wait_ms,
                fetch_max_bytes=settings.max_request_bytes,
                max_partition_fetch_bytes=settings.max_request_bytes,
                request_timeout_ms=settings.request_timeout_ms)


async def produce(bootstrap_servers: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> int:
    """Publish (key, value) records in large batches (few batches keep Tansu's fetch scans short)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks=1, linger_ms=50,
                                max_batch_size=1024 * 1024, max_request_size=64 * 1024 * 1024)
    await producer.start()
    count = 0
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
            count += 1
        await producer.flush()
    finally:
        await producer.stop()
    return count


async def create(bootstrap_servers: str, topics: Topics, *extra: str) -> None:
    await ensure_topics(bootstrap_servers, [*topics.all(), *extra])


async def drop(bootstrap_servers: str, topics: Topics, *extra: str) -> None:
    try:
        await delete_topics(bootstrap_servers, [*topics.all(), *extra])
    except Exception:
        pass  # best effort: the figures are taken already
