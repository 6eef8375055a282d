"""A replay file is held to the limits of a Kafka record: every object is measured before it is
built, a large one is scanned first, and whatever an object holds the reading goes on after it."""

from __future__ import annotations

import io
import struct
import tracemalloc

import msgpack
import pytest

from trainsentry.protocol import FileReadResult, ScalarEvent, encode, iter_file
from trainsentry.protocol.events import MAX_DEPTH, MAX_ELEMENTS, SCAN_ABOVE_BYTES

GOOD = ScalarEvent("run-1", 1.0, "TRAIN", 7, "loss", 0.5)
SCALAR = {"v": 1, "type": "scalar", "trial": "run-1", "ts": 1.0, "mode": "TRAIN", "step": 0,
          "name": "loss", "value": 0.5}
MIB = 1024 * 1024


def read(data: bytes, chunk: int = 1 << 20) -> tuple[list, FileReadResult]:
    result = FileReadResult()
    return list(iter_file(io.BytesIO(data), result, chunk)), result


def empty_arrays(count: int, per_array: int) -> bytes:
    """A scalar event whose unknown field holds ``count`` empty arrays (``count`` bytes of them),
    ``per_array`` to an array (a million is what the unpacker takes in one array)."""
    head = encode({**SCALAR, "junk": None})[:-1]
    arrays = count // per_array
    one = b"\xdd" + struct.pack(">I", per_array) + b"\x90" * per_array
    return head + b"\xdd" + struct.pack(">I", arrays) + one * arrays


@pytest.mark.parametrize("per_array", [16 * MIB, 1_000_000])
def test_sixteen_million_empty_arrays_in_a_file_are_refused_before_they_are_built(per_array) -> None:
    data = empty_arrays(16 * MIB, per_array) + encode(GOOD)
    tracemalloc.start()
    try:
        events, result = read(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert events == [GOOD] and result.invalid == 1 and result.undecodable_at is None
    assert f"more than {MAX_ELEMENTS} values" in result.reasons[0]
    # The object's bytes are buffered (a few copies of 16 MiB); built, they would take over 1 GB.
    assert peak < 5 * 16 * MIB


@pytest.mark.parametrize("chunk", [7, 4096, 1 << 20])
def test_objects_on_both_sides_of_the_scan_threshold_and_across_chunks(chunk: int) -> None:
    at = SCAN_ABOVE_BYTES - len(encode({**SCALAR, "pad": b""})) - 3  # pad's bin8/16 header
    small = encode({**SCALAR, "pad": b"x" * at})
    large = encode({**SCALAR, "pad": b"x" * (at + 10)})
    assert len(small) <= SCAN_ABOVE_BYTES < len(large)
    wide = encode({**SCALAR, "w": [0] * MAX_ELEMENTS})  # large, and too many values
    events, result = read(small + large + wide + encode(GOOD), chunk)
    assert [e.step for e in events] == [0, 0, 7]
    assert result.invalid == 1 and "more than" in result.reasons[0]


@pytest.mark.parametrize("bad", [
    msgpack.packb({**SCALAR, "extra": msgpack.ExtType(5, b"abc")}),
    msgpack.packb({**SCALAR, "extra": msgpack.Timestamp(1, 0)}),
    msgpack.packb({**SCALAR, "ts": msgpack.Timestamp(1, 0)}),
    msgpack.packb({**SCALAR, "collections": [msgpack.ExtType(1, b"")]}),
    msgpack.packb({**SCALAR, "pad": b"x" * SCAN_ABOVE_BYTES, "extra": msgpack.ExtType(5, b"")}),
    msgpack.packb({**SCALAR, "extra": [[[]]]})[:-3] + b"\x91" * (MAX_DEPTH + 1) + b"\xc0",
])
def test_an_extension_or_a_deep_value_is_an_invalid_object_and_the_file_goes_on(bad: bytes) -> None:
    events, result = read(bad + encode(GOOD) + bad + encode(GOOD), chunk=1000)
    assert events == [GOOD, GOOD], result.reasons
    assert result.invalid == 2 and result.undecodable_at is None
    assert all(r.startswith("offset ") and ": field '" in r for r in result.reasons)


def test_nesting_beyond_the_unpackers_stack_ends_the_file_at_its_offset() -> None:
    deep = b"\x91" * 5000 + b"\xc0"
    events, result = read(encode(GOOD) + deep + encode(GOOD))
    assert events == [GOOD] and result.undecodable_at == len(encode(GOOD))


def test_an_object_larger_than_a_record_may_be_ends_the_file_without_an_error() -> None:
    head = encode({**SCALAR, "pad": None})[:-1] + b"\xc6" + struct.pack(">I", 65 * MIB)
    events, result = read(encode(GOOD) + head + b"\x00" * (65 * MIB), chunk=4 * MIB)
    assert events == [GOOD] and result.undecodable_at == len(encode(GOOD))
