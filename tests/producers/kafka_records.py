"""What the producer tests share: a sender that records instead of sending, and a topic reader."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from aiokafka import AIOKafkaConsumer

from trainsentry.producers.protocol import Event, decode
from trainsentry.producers.sender import SenderStats
from trainsentry.producers.settings import SenderSettings


class RecordingSender:
    """Stands in for BackgroundSender: encodes at once (as the sender thread would) and keeps it."""

    def __init__(self, settings: SenderSettings | None = None) -> None:
        self.settings = settings or SenderSettings()
        self.records: list[tuple[str, bytes, Event]] = []
        self.closed = False

    def submit(self, topic: str, key: bytes, payload: Any, encode: Callable[[Any], bytes],
               size: int) -> bool:
        self.records.append((topic, key, decode(encode(payload))))
        return True

    @property
    def events(self) -> list[Event]:
        return [event for _, _, event in self.records]

    def stats(self) -> SenderStats:
        return SenderStats(sent=len(self.records), dropped=0, failed=0, buffered_bytes=0,
                           connected=True)

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


def read_records(bootstrap_servers: str, topic: str, count: int,
                 timeout: float = 15.0) -> list[tuple[bytes | None, Event]]:
    """(key, decoded event) of the records of ``topic``, from the beginning, until ``count`` of them."""
    return asyncio.run(_read(bootstrap_servers, topic, count, timeout))


async def _read(bootstrap_servers: str, topic: str, count: int,
                timeout: float) -> list[tuple[bytes | None, Event]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap_servers, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                fetch_max_wait_ms=50, max_partition_fetch_bytes=64 * 1024 * 1024,
                                fetch_max_bytes=64 * 1024 * 1024)
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
