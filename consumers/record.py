"""``trainsentry record``: keep a run's telemetry as a replay file, beyond the topics' retention.

A record that is not a valid input event (bytes that are not an event, a wrong or missing key)
is left out and counted, with a warning for the first few: whatever the topics hold, the
recording goes on to their end.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, BinaryIO

from trainsentry.consumers.records import DeadLetter, decode_record
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sources.topic_reader import offsets_read, read_topics

if TYPE_CHECKING:
    from trainsentry.consumers.progress import CommandProgress

log = logging.getLogger("trainsentry.record")
BAD_RECORDS_LOGGED = 3


async def record_topics(settings: KafkaSettings, stream: BinaryIO, trials: set[str] | None = None,
                        progress: CommandProgress | None = None) -> int:
    """Append every valid event on the tensors and logs topics to ``stream``; return how many.

    The record values are msgpack events already: a replay file is their concatenation. Invalid
    records are left out (and counted in the log), so the file replays without complaint.
    ``progress`` is told the events written and the offsets read.
    """
    topics = settings.topics
    keys = None if trials is None else {t.encode() for t in trials}
    written = skipped = 0
    positions: dict = {}
    if progress is not None:
        progress.follow_position(lambda: offsets_read(positions))
    async for records in read_topics(settings, [topics.tensors, topics.logs], keys=keys, positions=positions):
        before = written
        for record in records:
            item = decode_record(record)
            if isinstance(item, DeadLetter):
                skipped += 1
                if skipped <= BAD_RECORDS_LOGGED:
                    log.warning("skipping %s[%d]@%d: %s", item.topic, item.partition, item.offset,
                                item.reason)
                continue
            stream.write(record.value)
            written += 1
        if progress is not None:
            progress.add(events=written - before)
    stream.flush()
    if skipped:
        log.warning("left out %d record(s) that were not valid input events", skipped)
    return written
