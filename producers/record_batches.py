"""From items taken out of the buffer to record batches handed to the Kafka client.

Items are encoded here, on the sender thread, and grouped by (topic, key). A key always goes to
the partition the default (murmur2) partitioner picks, as any Kafka client would pick it, so each
group becomes whole batches for one partition: a fraction of the CPU per event of one ``send()``
per record, and this thread shares the GIL with training. Every item ends up in the
:class:`~.delivery_ledger.DeliveryLedger`: failed, or handed over with a delivery callback.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .delivery_ledger import DeliveryLedger

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

log = logging.getLogger("trainsentry.producers")

Encoder = Callable[[Any], bytes]
Item = tuple[str, bytes, Any, Encoder]
"""What the training thread submits: topic, key, payload, and the encoder to run on the payload."""


class RecordBatcher:
    """Encodes items and hands them to a producer as per-partition batches."""

    def __init__(self, ledger: DeliveryLedger) -> None:
        # Loaded with the client (the connection has imported aiokafka), never on import.
        from aiokafka.partitioner import DefaultPartitioner
        self._partitioner = DefaultPartitioner()
        self._ledger = ledger
        self._partitions: dict[tuple[str, bytes], int] = {}

    async def send(self, producer: AIOKafkaProducer, items: list[Item]) -> None:
        """Encode ``items`` and hand them to ``producer``; the ledger settles every one of them."""
        for (topic, key), values in self._encode(items).items():
            await self._send_group(producer, topic, key, values)

    def _encode(self, items: list[Item]) -> dict[tuple[str, bytes], list[bytes]]:
        """Encode items, grouped by (topic, key): each group goes to one partition as one batch."""
        groups: dict[tuple[str, bytes], list[bytes]] = {}
        for topic, key, payload, encode in items:
            try:
                value = encode(payload)
            except Exception as exc:
                self._ledger.fail(1)
                _warn_once(f"encode:{type(exc).__name__}",
                           "trainsentry: an event could not be encoded and was dropped: %r", exc)
                continue
            groups.setdefault((topic, key), []).append(value)
        return groups

    async def _send_group(self, producer: AIOKafkaProducer, topic: str, key: bytes,
                          values: list[bytes]) -> None:
        try:
            partition = await self._partition_for(producer, topic, key)
        except Exception as exc:  # no metadata: the broker is gone or the topic cannot be created
            self._ledger.fail(len(values))
            log.debug("trainsentry: no partition for %s: %r", topic, exc)
            return
        batch, count = producer.create_batch(), 0
        for value in values:
            if batch.append(key=key, value=value, timestamp=None) is None:
                if count:
                    await self._hand_over(producer, batch, topic, partition, count)
                batch, count = producer.create_batch(), 0
                if batch.append(key=key, value=value, timestamp=None) is None:
                    self._ledger.fail(1)  # larger than a whole batch may be
                    continue
            count += 1
        if count:
            await self._hand_over(producer, batch, topic, partition, count)

    async def _hand_over(self, producer: AIOKafkaProducer, batch: Any, topic: str, partition: int,
                         count: int) -> None:
        try:
            delivery = await producer.send_batch(batch, topic, partition=partition)
        except Exception as exc:  # KafkaTimeoutError while the broker is away, and the like
            self._ledger.fail(count)
            log.debug("trainsentry: batch of %d for %s not sent: %r", count, topic, exc)
            return
        self._ledger.hand_over(count)
        delivery.add_done_callback(functools.partial(self._ledger.on_delivery, count))

    async def _partition_for(self, producer: AIOKafkaProducer, topic: str, key: bytes) -> int:
        """The partition the default (murmur2) partitioner picks for ``key``, as any client would."""
        partition = self._partitions.get((topic, key))
        if partition is None:
            partitions = sorted(await producer.partitions_for(topic))
            partition = self._partitions[(topic, key)] = self._partitioner(key, partitions, partitions)
        return partition


_warned: set[str] = set()


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)
