"""No record can drive decoding into recursion or unbounded allocation: a structural fuzz.

Every record either decodes to an event or is refused with a ProtocolError naming the problem;
nothing else escapes, and refusing a large hostile record allocates little.
"""

from __future__ import annotations

import struct
import tracemalloc

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trainsentry.protocol import ProtocolError, decode, encode
from trainsentry.protocol.events import MAX_DEPTH, MAX_ELEMENTS, SCAN_ABOVE_BYTES
from trainsentry.protocol.rendering import brief
from trainsentry.protocol.shape_scan import check_shape

SCALAR = {"v": 1, "type": "scalar", "trial": "t", "ts": 1.0, "mode": "TRAIN", "step": 0,
          "name": "loss", "value": 0.5}


def nested(depth: int) -> bytes:
    """``depth`` arrays, one inside the other, around a nil: built as bytes (no recursion)."""
    return b"\x91" * depth + b"\xc0"


def outcome(data: bytes) -> str:
    try:
        decode(data)
    except ProtocolError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
        return "refused"
    return "accepted"


@pytest.mark.parametrize("depth", [MAX_DEPTH - 2, MAX_DEPTH, MAX_DEPTH + 1, 1000, 1020, 5000])
def test_deep_nesting_in_an_unknown_field_small_and_large(depth: int) -> None:
    head = encode({**SCALAR, "extra": None})[:-1]  # the map with its last value cut off
    small = head + nested(depth)
    large_fields = {**SCALAR, "pad": b"x" * SCAN_ABOVE_BYTES}
    large = encode({**large_fields, "extra": None})[:-1] + nested(depth)
    expected = "accepted" if depth < MAX_DEPTH else "refused"
    assert outcome(small) == expected
    assert outcome(large) == expected


@pytest.mark.parametrize("depth", [MAX_DEPTH - 2, MAX_DEPTH + 5, 1020])
def test_deep_details_of_an_alert_are_refused_not_recursed(depth: int) -> None:
    alert = {"v": 1, "type": "alert", "trial": "t", "ts": 1.0, "id": "i", "rule": "r",
             "rule_type": "r", "mode": "TRAIN", "step": 1, "tensors": [], "message": "m",
             "event_ts": 1.0, "details": None}
    data = encode(alert)[:-1] + b"\x81\xa1k" + nested(depth)  # details = {"k": [[[...]]]}
    assert outcome(data) == ("accepted" if depth + 2 <= MAX_DEPTH else "refused")


def test_sixteen_million_empty_arrays_are_refused_before_they_are_built() -> None:
    # An unknown field holding 16 Mi empty arrays: 16 MiB on the wire, gigabytes once decoded.
    count = 16 * 1024 * 1024
    body = encode({**SCALAR, "junk": None})[:-1] + b"\xdd" + struct.pack(">I", count) + b"\x90" * count
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match=f"more than {MAX_ELEMENTS} values"):
            decode(body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # the refusal allocates next to nothing


def test_wide_values_at_the_limit_and_one_past() -> None:
    # The record's map, its fields' keys and values, "w" and its array, "pad" and its bytes.
    filler = MAX_ELEMENTS - (1 + 2 * len(SCALAR) + 2 + 2)
    at_limit = encode({**SCALAR, "w": [0] * filler, "pad": b"x" * SCAN_ABOVE_BYTES})
    assert outcome(at_limit) == "accepted"
    past = encode({**SCALAR, "w": [0] * (filler + 1), "pad": b"x" * SCAN_ABOVE_BYTES})
    assert outcome(past) == "refused"


@pytest.mark.parametrize("value", [msgpack.Timestamp(1, 0), msgpack.ExtType(5, b"abc"),
                                   [msgpack.Timestamp(2, 5)], {"k": msgpack.ExtType(1, b"")}])
def test_extension_types_are_refused_wherever_they_are(value: object) -> None:
    assert outcome(msgpack.packb({**SCALAR, "ext": value})) == "refused"
    padded = msgpack.packb({**SCALAR, "ext": value, "pad": b"x" * SCAN_ABOVE_BYTES})
    assert outcome(padded) == "refused"


def test_a_huge_value_in_an_error_is_shown_briefly() -> None:
    with pytest.raises(ProtocolError) as caught:
        decode(encode({**SCALAR, "trial": ["x" * 1_000_000] * 3}))
    assert len(str(caught.value)) < 200
    assert len(brief(list(range(10**6)))) <= 80


# Every msgpack type, nested at random, in known and unknown fields.
plain = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64 - 1) | st.floats(allow_nan=True)
    | st.text(max_size=20) | st.binary(max_size=20)
    | st.builds(msgpack.Timestamp, st.integers(0, 2**32 - 1), st.integers(0, 999_999_999))
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8)),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=5),
    max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(SCALAR) + ["worker", "session", "data", "shape",
                                                          "dtype", "details", "x"]), plain),
       st.booleans())
def test_any_structure_is_an_event_or_a_protocol_error(fields: dict, pad: bool) -> None:
    obj = {**SCALAR, **fields}
    if pad:
        obj["pad"] = b"p" * SCAN_ABOVE_BYTES
    try:
        data = msgpack.packb(obj, use_bin_type=True, strict_types=False)
    except (ValueError, OverflowError, TypeError):
        return  # not representable in msgpack at all
    outcome(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_an_event_or_a_protocol_error(data: bytes) -> None:
    outcome(data)
    try:
        check_shape(data)  # returns, or refuses with a ProtocolError; never anything else
    except ProtocolError:
        pass
