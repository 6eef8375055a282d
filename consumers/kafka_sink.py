"""The sidecar's Kafka output: alerts, metrics and dead letters, acknowledged before any commit."""

from __future__ import annotations

import asyncio
from typing import Iterable

from aiokafka import AIOKafkaProducer

from trainsentry.consumers.records import DeadLetter, encode_dead_letter
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.protocol import AlertEvent, Event, MetricEvent, encode


class KafkaSink:
    """Sends the engine's outputs; :meth:`flush` returns once the broker has acknowledged them all.

    Offsets are committed only after :meth:`flush`: an input is never marked done before what it
    produced is safely in Kafka (at least once; alert ids make the repeats recognisable).
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self.topics = settings.topics
        self.settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._pending: list[asyncio.Future] = []

    async def start(self) -> None:
        # Made here, not in __init__: aiokafka clients belong to the running loop.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            client_id=f"{self.settings.client_id}-sink",
            acks="all",  # an alert acknowledged by the leader alone can still be lost
            linger_ms=self.settings.linger_ms,
            max_request_size=self.settings.max_request_bytes,
            request_timeout_ms=self.settings.request_timeout_ms,
        )
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def send_events(self, events: Iterable[Event]) -> None:
        for event in events:
            if isinstance(event, AlertEvent):
                topic = self.topics.alerts
            elif isinstance(event, MetricEvent):
                topic = self.topics.metrics
            else:
                continue
            self._pending.append(
                await self._producer.send(topic, encode(event), key=event.trial.encode()))

    async def send_dead_letters(self, letters: Iterable[DeadLetter]) -> None:
        for letter in letters:
            self._pending.append(await self._producer.send(
                self.topics.deadletter, encode_dead_letter(letter), key=letter.key))

    async def flush(self) -> None:
        """Wait until every record sent so far is acknowledged; raise if any was refused."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)
