"""Dead letters always fit: bounded reason, cut key and value copies, metadata alone when refused.

And the keys of input records: a record without a key, or keyed by another trial, is refused.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import msgpack

from tests.sidecar_harness import read_dead_letters
from trainsentry.consumers.records import (
    MAX_DEAD_KEY_BYTES,
    MAX_DEAD_REASON_CHARS,
    MAX_DEAD_VALUE_BYTES,
    DeadLetter,
    decode_dead_letter,
    decode_record,
    encode_dead_letter,
)
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sinks.kafka import KafkaSink
from trainsentry.protocol import ScalarEvent, encode

MIB = 1024 * 1024
KAFKA_DEFAULT_RECORD_LIMIT = 1_048_588  # message.max.bytes of an Apache Kafka broker by default
EVENT = ScalarEvent("run-1", 1.0, "TRAIN", 0, "loss", 0.5, collections=("losses",))


def record(value: bytes | None, key: bytes | None, offset: int = 7) -> SimpleNamespace:
    return SimpleNamespace(topic="t.tensors", partition=2, offset=offset, key=key, value=value,
                           timestamp=1_700_000_000_000)


def test_a_twelve_mib_key_that_is_not_the_trial_makes_a_dead_letter_that_fits() -> None:
    letter = decode_record(record(encode(EVENT), b"k" * (12 * MIB)))
    assert isinstance(letter, DeadLetter)
    assert letter.reason.startswith("field 'key': record key b'kkkkk'... (12582912 bytes) is not "
                                    "the trial 'run-1'")
    assert len(letter.reason) < 200
    data = encode_dead_letter(letter)
    assert len(data) < 4096  # a small value, a cut key, a short reason
    stored = decode_dead_letter(data)
    assert (stored["key"], stored["key_bytes"], stored["key_truncated"]) == (
        b"k" * MAX_DEAD_KEY_BYTES, 12 * MIB, True)
    assert stored["value"] == encode(EVENT) and "truncated" not in stored
    assert letter.wire_key == b"k" * MAX_DEAD_KEY_BYTES  # the dead letter's own record key too


def test_every_part_at_its_bound_still_fits_a_default_kafka_record() -> None:
    letter = DeadLetter("t" * 249, 0, 2**62, b"\xff" * (64 * MIB), b"\xc1" * (64 * MIB),
                        "\u20ac" * 100_000, 0)  # 3 bytes a character
    data = encode_dead_letter(letter)
    assert len(data) < KAFKA_DEFAULT_RECORD_LIMIT
    stored = decode_dead_letter(data)
    assert len(stored["reason"]) <= MAX_DEAD_REASON_CHARS and stored["reason"].endswith(
        "(100000 characters)")
    assert (len(stored["value"]), stored["value_bytes"], stored["truncated"]) == (
        MAX_DEAD_VALUE_BYTES, 64 * MIB, True)
    meta = decode_dead_letter(encode_dead_letter(letter, metadata_only=True))
    assert (meta["key"], meta["value"], meta["key_bytes"], meta["value_bytes"]) == (
        None, None, 64 * MIB, 64 * MIB)
    assert (meta["topic"], meta["partition"], meta["offset"]) == ("t" * 249, 0, 2**62)


def test_a_record_without_a_key_or_with_another_trial_is_refused_with_its_reason() -> None:
    assert decode_record(record(encode(EVENT), b"run-1")) == EVENT
    unkeyed = decode_record(record(encode(EVENT), None))
    assert isinstance(unkeyed, DeadLetter)
    assert unkeyed.reason == "field 'key': missing; an input record is keyed by its event's trial ('run-1')"
    other = decode_record(record(encode(EVENT), b"run-2"))
    assert other.reason == "field 'key': record key b'run-2' is not the trial 'run-1'"
    # Bytes that are no event say so first, keyed or not.
    assert decode_record(record(b"\xc1", None)).reason.startswith("field 'value': not a msgpack record")


def test_a_surrogate_in_a_reason_cannot_break_the_encoding() -> None:
    letter = DeadLetter("t", 0, 1, None, None, "evaluation failed: " + chr(0xdcff), 0)
    assert decode_dead_letter(encode_dead_letter(letter))["reason"] == "evaluation failed: \\udcff"


def test_a_dead_letter_the_client_refuses_as_too_large_goes_as_its_metadata(
        bootstrap_servers, topics) -> None:
    # A sink whose records may not exceed 64 KiB: the dead letter of a 1 MiB record does, even cut.
    settings = KafkaSettings(bootstrap_servers, topics=topics, max_request_bytes=64 * 1024)
    big = DeadLetter(topics.tensors, 3, 41, b"run-9", b"\xc1" * MIB, "field 'value': not msgpack", 5000)
    small = DeadLetter(topics.tensors, 3, 42, b"run-9", b"\xc1", "field 'value': not msgpack", 5000)

    async def deliver() -> None:
        sink = KafkaSink(settings)
        await sink.start()
        try:
            await sink.write_batch([], [big, small])
        finally:
            await sink.stop(True)

    asyncio.run(deliver())  # returns: nothing was left to stop the run
    letters = sorted(read_dead_letters(bootstrap_servers, topics, count=2, timeout=10),
                     key=lambda d: d["offset"])
    assert [(d["offset"], d["value"], d.get("metadata_only")) for d in letters] == [
        (41, None, True), (42, b"\xc1", None)]
    assert letters[0]["value_bytes"] == MIB and letters[0]["reason"] == "field 'value': not msgpack"
    assert letters[0]["partition"] == 3 and letters[0]["topic"] == topics.tensors


def test_the_msgpack_of_a_metadata_letter_is_small_whatever_it_describes() -> None:
    letter = DeadLetter("t", 0, 1, b"k" * (12 * MIB), b"v" * (60 * MIB), "r" * 10 * MIB, 0)
    assert len(encode_dead_letter(letter, metadata_only=True)) < MAX_DEAD_REASON_CHARS + 512
    assert msgpack.unpackb(encode_dead_letter(letter, metadata_only=True))["metadata_only"] is True
