"""The notifier's state beside its committed offsets: ``<prefix>.notify-state``.

What the throttle holds (windows, alerts held back and not yet in any message) must survive a
restart, or a restart would lose those alerts or repeat a message inside its window. Kafka keeps a
metadata string with each committed offset for this, but Tansu (the embedded broker) does not keep
it, so the state goes to a topic of its own: one JSON record per (group, alerts topic, partition),
keyed by those, written (acknowledged by the broker) before the offset it goes with is committed.
The newest record of a key wins; the topic is created with ``cleanup.policy=compact`` where the
cluster enforces it, so it stays one record per key.

A record holds the partition's next offset, so a crash between writing it and committing is
resumed from the record: nothing it covers is sent twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sources.topic_reader import read_topics

log = logging.getLogger("trainsentry.notify")
STATE_VERSION = 1


def state_topic(prefix: str) -> str:
    """
    >>> state_topic("trainsentry")
    'trainsentry.notify-state'
    """
    return f"{prefix}.notify-state"


@dataclass
class PartitionState:
    """What a partition's notifier keeps across restarts."""

    offset: int | None = None               # the next offset to read
    throttle: dict[str, Any] = field(default_factory=dict)
    history_before_ms: int | None = None    # records written before this are history, not notified

    def encode(self) -> bytes:
        return json.dumps({"v": STATE_VERSION, "offset": self.offset, "throttle": self.throttle,
                           "history_before_ms": self.history_before_ms},
                          separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> PartitionState | None:
        """The state in ``data``; ``None`` when it is not one (a record someone else wrote)."""
        try:
            doc = json.loads(data)
            if doc.get("v") != STATE_VERSION:
                return None
            offset, before = doc.get("offset"), doc.get("history_before_ms")
            throttle = doc.get("throttle") or {}
            if not (offset is None or isinstance(offset, int)) or not isinstance(throttle, dict) \
                    or not (before is None or isinstance(before, int)):
                return None
            return cls(offset, throttle, before)
        except (ValueError, AttributeError, TypeError):
            return None


class StateStore:
    """Reads and writes the states of one consumer group's partitions."""

    def __init__(self, settings: KafkaSettings, group_id: str) -> None:
        self.settings = settings
        self.group_id = group_id
        self.topic = state_topic(settings.topics.prefix)
        self._producer: AIOKafkaProducer | None = None

    def key(self, tp: TopicPartition) -> bytes:
        return f"{self.group_id}|{tp.topic}|{tp.partition}".encode()

    async def start(self) -> None:
        await _ensure_compacted(self.settings, self.topic)
        self._producer = AIOKafkaProducer(**self.settings.client_kwargs("notify-state"),
                                          acks="all", request_timeout_ms=self.settings.request_timeout_ms)
        await self._producer.start()

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def load(self, tps: list[TopicPartition]) -> dict[TopicPartition, PartitionState]:
        """The newest state of each of ``tps`` that has one (reads the topic to its end)."""
        wanted = {self.key(tp): tp for tp in tps}
        found: dict[TopicPartition, PartitionState] = {}
        if not wanted:
            return found
        async for records in read_topics(self.settings, [self.topic], keys=set(wanted)):
            for record in records:
                state = PartitionState.decode(record.value or b"")
                if state is not None:
                    found[wanted[record.key]] = state
        return found

    async def save(self, tp: TopicPartition, state: PartitionState) -> None:
        """Write ``state``; returns once the broker acknowledged it."""
        await self._producer.send_and_wait(self.topic, state.encode(), key=self.key(tp))


async def _ensure_compacted(settings: KafkaSettings, topic: str) -> None:
    admin = AIOKafkaAdminClient(**settings.client_kwargs("admin"))
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            try:
                await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                                                    topic_configs={"cleanup.policy": "compact"})])
            except TopicAlreadyExistsError:
                pass
    except KafkaError as exc:  # created on first write instead; compaction is an optimisation
        log.debug("could not create %s as a compacted topic: %s", topic, exc)
    finally:
        await admin.close()
