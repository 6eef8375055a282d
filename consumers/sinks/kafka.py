"""Outputs to Kafka: alerts, metrics and dead letters, acknowledged by every in-sync replica.

Each output goes to the topic of its event type (looked up once per type); the sidecar's routes
are its alerts and metrics topics, ``replay --publish TOPIC`` routes alerts alone to ``TOPIC``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from trainsentry.consumers.records import DeadLetter, encode_dead_letter
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sinks.base import Sink
from trainsentry.protocol import AlertEvent, Event, MetricEvent, encode

log = logging.getLogger("trainsentry.sink")
# What the client or the broker answers for a record larger than it takes.
TOO_LARGE = (MessageSizeTooLargeError, RecordTooLargeError, RecordListTooLargeError)


class KafkaSink(Sink):
    """Sends outputs by event type to ``routes``' topics and dead letters to ``dead_letter_topic``.

    :meth:`write_batch` returns once the broker has acknowledged every record of the batch
    (``acks=all``): the driver commits the inputs only then. A dead letter refused as too large
    is published again as its metadata alone (:func:`encode_dead_letter`), never left to stop
    the run.
    """

    def __init__(self, settings: KafkaSettings, routes: Mapping[type[Event], str] | None = None,
                 dead_letter_topic: str | None = None) -> None:
        self.settings = settings
        topics = settings.topics
        if routes is None:
            routes = {AlertEvent: topics.alerts, MetricEvent: topics.metrics}
            dead_letter_topic = dead_letter_topic or topics.deadletter
        self.routes = dict(routes)
        self.dead_letter_topic = dead_letter_topic
        self._producer: AIOKafkaProducer | None = None

    @classmethod
    def from_target(cls, target: str, settings: KafkaSettings) -> KafkaSink:
        """``kafka``: the settings' alerts, metrics and dead-letter topics; ``kafka:TOPIC``: alerts
        to ``TOPIC``."""
        return cls(settings, {AlertEvent: target}) if target else cls(settings)

    async def start(self) -> None:
        # Made here, not in __init__: aiokafka clients belong to the running loop.
        self._producer = AIOKafkaProducer(
            **self.settings.client_kwargs("sink"),
            acks="all",  # an alert acknowledged by the leader alone can still be lost
            linger_ms=self.settings.linger_ms,
            max_request_size=self.settings.max_request_bytes,
            request_timeout_ms=self.settings.request_timeout_ms,
        )
        await self._producer.start()

    async def stop(self, complete: bool) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def write_batch(self, outputs: Sequence[Event], dead_letters: Sequence[DeadLetter]) -> None:
        send, routes = self._producer.send, self.routes
        pending: list[asyncio.Future] = []
        for event in outputs:
            topic = routes.get(type(event))
            if topic is not None:
                pending.append(await send(topic, encode(event), key=event.trial.encode()))
        letters: list[tuple[DeadLetter, asyncio.Future | None]] = []
        if self.dead_letter_topic is not None:
            letters = [(letter, await self._send_letter(letter)) for letter in dead_letters]
        if pending:
            await asyncio.gather(*pending)
        for letter, sent in letters:
            await self._settle_letter(letter, sent)

    async def _send_letter(self, letter: DeadLetter,
                           metadata_only: bool = False) -> asyncio.Future | None:
        """Hand a dead letter to the producer; ``None`` when the client refuses it as too large."""
        try:
            return await self._producer.send(self.dead_letter_topic,
                                             encode_dead_letter(letter, metadata_only),
                                             key=letter.wire_key)
        except TOO_LARGE:
            return None

    async def _settle_letter(self, letter: DeadLetter, sent: asyncio.Future | None) -> None:
        """Wait for a dead letter's acknowledgement; one refused as too large (by the client or the
        broker: its record size limit may be lower than the sink's) goes again as its metadata
        alone, so that it can never stop the sidecar."""
        if sent is not None:
            try:
                await sent
                return
            except TOO_LARGE:
                pass
        log.warning("the dead letter of %s[%d]@%d is larger than the broker takes; published "
                    "without its key and value copies", letter.topic, letter.partition, letter.offset)
        reduced = await self._send_letter(letter, metadata_only=True)
        if reduced is None:  # a few KiB refused: the limits are misconfigured, say so
            raise RecordTooLargeError(f"even the metadata of the dead letter of {letter.topic}"
                                      f"[{letter.partition}]@{letter.offset} is too large")
        await reduced

    def retriable(self, error: BaseException) -> bool:
        # Not authorised, too large, ...: sending again cannot help.
        return isinstance(error, KafkaError) and error.retriable
