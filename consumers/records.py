"""From Kafka records to events, and the dead letters of those that are not events.

A dead letter keeps what is needed to look at the bad input again: where it came from (topic,
partition, offset), why it was refused, and copies of its key and bytes. Every part is bounded, so
that a dead letter always fits in a Kafka record whatever the input held (docs/protocol.md,
"Dead letters"): the reason to :data:`MAX_DEAD_REASON_CHARS` characters, the key to
:data:`MAX_DEAD_KEY_BYTES` and the value to :data:`MAX_DEAD_VALUE_BYTES` bytes; one the broker
refuses all the same is published as its metadata alone (:func:`encode_dead_letter` with
``metadata_only``).

An input record must be keyed by the trial of its event: one without a key, or with another
key, is a dead letter.

>>> from types import SimpleNamespace
>>> rec = SimpleNamespace(topic="trainsentry.tensors", partition=0, offset=7, key=b"run", value=b"\\xc1",
...                       timestamp=1_700_000_000_000)
>>> letter = decode_record(rec)
>>> letter.reason.startswith("field 'value': not a msgpack record")
True
>>> decode_dead_letter(encode_dead_letter(letter))["offset"]
7
>>> huge = SimpleNamespace(topic="t", partition=0, offset=8, key=b"k" * 12_000_000, value=b"\\xc1",
...                        timestamp=0)
>>> stored = decode_dead_letter(encode_dead_letter(decode_record(huge)))
>>> len(stored["key"]), stored["key_bytes"], stored["key_truncated"]
(1024, 12000000, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import msgpack

from trainsentry.protocol import VERSION, Event, ProtocolError, decode
from trainsentry.protocol.rendering import brief

# Bounds of one dead letter. Together (reason up to 4 bytes a character, plus the envelope) they
# stay below 1 MiB, the record size a Kafka broker accepts by default (message.max.bytes).
MAX_DEAD_REASON_CHARS = 4096
MAX_DEAD_KEY_BYTES = 1024           # a trial id is at most 256 characters: 1 KiB of UTF-8
MAX_DEAD_VALUE_BYTES = 960 * 1024
MAX_ERROR_CHARS = 300               # an exception's text quoted in a reason or a log line


class KafkaRecord(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record the sidecar could not use (``key`` and ``value`` as received, uncut)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    timestamp_ms: int

    @property
    def wire_key(self) -> bytes | None:
        """The key of the dead letter's own record: the original key, cut as in the copy."""
        key = self.key
        return key if key is None or len(key) <= MAX_DEAD_KEY_BYTES else key[:MAX_DEAD_KEY_BYTES]


def decode_record(record: KafkaRecord) -> Event | DeadLetter:
    """The record's event, or a :class:`DeadLetter` saying why there is none.

    Never raises: whatever the bytes and the key hold, the answer is one or the other.
    """
    value = record.value
    if value is None:
        return dead_letter(record, "field 'value': empty record (tombstone)")
    try:
        event = decode(value)
    except ProtocolError as exc:
        return dead_letter(record, str(exc))
    except Exception as exc:  # noqa: BLE001 - a defect of the decoder must not stop the reader
        return dead_letter(record, f"field 'value': cannot be decoded: {describe(exc)}")
    key = record.key
    if key is None:
        # Keying by trial is what keeps a trial's events in order on one consumer: an unkeyed
        # record may land on any partition, and be evaluated before events written earlier.
        return dead_letter(record, f"field 'key': missing; an input record is keyed by its "
                                   f"event's trial ({brief(event.trial)})")
    if key != event.trial.encode():
        return dead_letter(record, f"field 'key': record key {brief(key)} is not the trial "
                                   f"{brief(event.trial)}")
    return event


def dead_letter(record: KafkaRecord, reason: str) -> DeadLetter:
    """The dead letter of ``record``, refused for ``reason`` (cut to :data:`MAX_DEAD_REASON_CHARS`)."""
    return DeadLetter(record.topic, record.partition, record.offset, record.key, record.value,
                      bounded_reason(reason), record.timestamp)


def bounded_reason(reason: str) -> str:
    """``reason`` cut to at most :data:`MAX_DEAD_REASON_CHARS` characters, the cut marked; a
    character that UTF-8 cannot encode (a lone surrogate) is written as its escape.

    >>> len(bounded_reason("x" * 100_000)) <= MAX_DEAD_REASON_CHARS
    True
    >>> print(bounded_reason("bad " + chr(0xdcff)))
    bad \\udcff
    """
    if not reason.isascii():
        reason = reason.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(reason) <= MAX_DEAD_REASON_CHARS:
        return reason
    marker = f"... ({len(reason)} characters)"
    return reason[: MAX_DEAD_REASON_CHARS - len(marker)] + marker


def describe(exc: BaseException) -> str:
    """``Type: message`` of an exception, at most :data:`MAX_ERROR_CHARS` characters, whatever
    its message holds (even one that cannot be turned into text)."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - e.g. a message whose repr recurses too deep
        text = "(a message that cannot be shown)"
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


def encode_dead_letter(letter: DeadLetter, metadata_only: bool = False) -> bytes:
    """The value written to the dead-letter topic (a msgpack map, like every trainsentry record).

    The key is kept up to :data:`MAX_DEAD_KEY_BYTES` and the value up to
    :data:`MAX_DEAD_VALUE_BYTES` bytes; a cut copy says so (``key_truncated``, ``truncated``) and
    gives the original size (``key_bytes``, ``value_bytes``). With ``metadata_only`` (for a dead
    letter the broker refused as too large) neither copy is kept, only their sizes: what remains
    is where the record is and why it was refused, a few KiB at most.

    >>> small = DeadLetter("t", 0, 3, b"run", b"x" * 10, "bad", 0)
    >>> meta = decode_dead_letter(encode_dead_letter(small, metadata_only=True))
    >>> meta["value"], meta["value_bytes"], meta["metadata_only"], meta["offset"]
    (None, 10, True, 3)
    """
    key, value = letter.key, letter.value
    out: dict[str, Any] = {
        "v": VERSION,
        "type": "deadletter",
        "ts": letter.timestamp_ms / 1000.0,
        "topic": letter.topic,
        "partition": letter.partition,
        "offset": letter.offset,
        "key": key,
        "value": value,
        "reason": bounded_reason(letter.reason),
    }
    if metadata_only:
        out.update(key=None, value=None, metadata_only=True)
        if key is not None:
            out["key_bytes"] = len(key)
        if value is not None:
            out["value_bytes"] = len(value)
        return msgpack.packb(out, use_bin_type=True)
    if key is not None and len(key) > MAX_DEAD_KEY_BYTES:
        out.update(key=key[:MAX_DEAD_KEY_BYTES], key_bytes=len(key), key_truncated=True)
    if value is not None and len(value) > MAX_DEAD_VALUE_BYTES:
        out.update(value=value[:MAX_DEAD_VALUE_BYTES], value_bytes=len(value), truncated=True)
    return msgpack.packb(out, use_bin_type=True)


def decode_dead_letter(data: bytes) -> dict[str, Any]:
    return msgpack.unpackb(data, raw=False)
