"""``trainsentry record``: keep a run's telemetry as a replay file, beyond the topics' retention."""

from __future__ import annotations

from typing import BinaryIO

from trainsentry.consumers.records import DeadLetter, decode_record
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.topic_reader import read_topics


async def record_topics(settings: KafkaSettings, stream: BinaryIO, trials: set[str] | None = None) -> int:
    """Append every valid event on the tensors and logs topics to ``stream``; return how many.

    The record values are msgpack events already: a replay file is their concatenation. Invalid
    records are left out, so the file replays without complaint.
    """
    topics = settings.topics
    keys = None if trials is None else {t.encode() for t in trials}
    written = 0
    async for records in read_topics(settings, [topics.tensors, topics.logs], keys=keys):
        for record in records:
            if not isinstance(decode_record(record), DeadLetter):
                stream.write(record.value)
                written += 1
    stream.flush()
    return written
