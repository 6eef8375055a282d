"""From Kafka records to events, and the dead letters of those that are not events.

A dead letter keeps everything needed to look at the bad input again: its original bytes and key,
where it came from (topic, partition, offset) and why it was refused.

>>> from types import SimpleNamespace
>>> rec = SimpleNamespace(topic="trainsentry.tensors", partition=0, offset=7, key=b"run", value=b"\\xc1",
...                       timestamp=1_700_000_000_000)
>>> letter = decode_record(rec)
>>> letter.reason.startswith("field 'value': not a msgpack record")
True
>>> decode_dead_letter(encode_dead_letter(letter))["offset"]
7
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import msgpack

from trainsentry.protocol import VERSION, Event, ProtocolError, decode

MAX_DEAD_VALUE_BYTES = 1024 * 1024


class KafkaRecord(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record the sidecar could not use."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    timestamp_ms: int


def decode_record(record: KafkaRecord) -> Event | DeadLetter:
    """The record's event, or a :class:`DeadLetter` saying why there is none."""
    value = record.value
    if value is None:
        return dead_letter(record, "field 'value': empty record (tombstone)")
    try:
        event = decode(value)
    except ProtocolError as exc:
        return dead_letter(record, str(exc))
    if record.key is not None and record.key != event.trial.encode():
        # Keying by trial is what keeps a trial's state on one consumer; a wrong key breaks it.
        return dead_letter(record, f"field 'key': record key {record.key!r} is not the trial {event.trial!r}")
    return event


def dead_letter(record: KafkaRecord, reason: str) -> DeadLetter:
    """The dead letter of ``record``, refused for ``reason``."""
    return DeadLetter(record.topic, record.partition, record.offset, record.key, record.value,
                      reason, record.timestamp)


def encode_dead_letter(letter: DeadLetter) -> bytes:
    """The value written to the dead-letter topic (a msgpack map, like every trainsentry record).

    The original bytes are kept up to :data:`MAX_DEAD_VALUE_BYTES`: a record near the size limit
    plus its envelope could never be published, and would stall the sidecar.
    """
    value = letter.value
    out = {
        "v": VERSION,
        "type": "deadletter",
        "ts": letter.timestamp_ms / 1000.0,
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "key": letter.key,
        "value": value,
        "reason": letter.reason,
    }
    if value is not None and len(value) > MAX_DEAD_VALUE_BYTES:
        out.update(value=value[:MAX_DEAD_VALUE_BYTES], value_bytes=len(value), truncated=True)
    return msgpack.packb(out, use_bin_type=True)


def decode_dead_letter(data: bytes) -> dict[str, Any]:
    return msgpack.unpackb(data, raw=False)
