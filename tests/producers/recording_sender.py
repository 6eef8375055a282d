"""A stand-in for BackgroundSender that records the events instead of sending them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trainsentry.producers.delivery_ledger import SenderStats
from trainsentry.producers.settings import SenderSettings
from trainsentry.protocol import Event, decode


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
