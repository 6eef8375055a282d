"""Read a topic's records back from Kafka and decode them: what the integration tests check."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer

from trainsentry.protocol import Event, decode


def read_records(bootstrap_servers: str, topic: str, count: int, timeout: float = 15.0,
                 **client_kwargs: Any) -> list[tuple[bytes | None, Event]]:
    """(key, decoded event) of the records of ``topic``, from the beginning, until ``count`` of them
    or ``timeout``; ``client_kwargs`` (e.g. ``ssl_context``) go to the consumer."""
    return asyncio.run(_read(bootstrap_servers, topic, count, timeout, client_kwargs))


async def _read(bootstrap_servers: str, topic: str, count: int, timeout: float,
                client_kwargs: dict[str, Any]) -> list[tuple[bytes | None, Event]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap_servers, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                fetch_max_wait_ms=50, max_partition_fetch_bytes=64 * 1024 * 1024,
                                fetch_max_bytes=64 * 1024 * 1024, **client_kwargs)
    await consumer.start()
    out: list[tuple[bytes | None, Event]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(out) < count and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=100)
            for records in batches.values():
                out.extend((r.key, decode(r.value)) for r in records)
    finally:
        await consumer.stop()
    return out
