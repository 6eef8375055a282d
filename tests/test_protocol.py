"""The wire protocol (docs/protocol.md): round trips, and one rejection per rule of the protocol."""

from __future__ import annotations

import io
import math

import msgpack
import numpy as np
import pytest

from trainsentry.protocol import (
    MAX_TRIAL_CHARS,
    AlertEvent,
    FileReadResult,
    LogEvent,
    MetricEvent,
    ProtocolError,
    ScalarEvent,
    TensorEvent,
    decode,
    encode,
    iter_file,
    to_wire,
)

EVENTS = [
    ScalarEvent(trial="run-1", ts=1.0, mode="TRAIN", step=4, name="loss", value=0.5,
                worker="3", global_step=9, collections=("losses",)),
    ScalarEvent(trial="run-1", ts=1.0, mode="EVAL", step=0, name="loss", value=math.inf),
    TensorEvent.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), trial="run-1", ts=2.0,
                           mode="TRAIN", step=4, name="fc1.weight", collections=("weights",)),
    TensorEvent(trial="run-1", ts=2.0, mode="GLOBAL", step=7, name="fc1.weight.grad",
                reductions={"variance": 0.1, "l2": 3.0}),
    LogEvent(trial="run-1", ts=3.0, stream="stderr", line="Loss = 0.3;", seq=0),
    LogEvent(trial="run-1", ts=3.5, stream="stderr", line="[trainsentry] done", seq=1, final=True,
             session="a1b2"),
    MetricEvent(trial="run-1", ts=3.0, name="loss", value=0.3, step=0, objective=True),
    AlertEvent(trial="run-1", ts=4.0, id="abc", rule="loss", rule_type="LossNotDecreasing",
               mode="TRAIN", step=12, tensors=("loss",), message="m", details={"cur": 0.3},
               event_ts=4.0, worker="1"),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_every_event_type_round_trips(event) -> None:
    assert decode(encode(event)) == event


def test_tensor_bytes_come_back_as_the_array_without_copy() -> None:
    arr = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float64)
    event = decode(encode(TensorEvent.from_array(arr, trial="t", ts=0.0, mode="TRAIN", step=0, name="w")))
    out = event.array()
    np.testing.assert_array_equal(out, arr)
    assert not out.flags.writeable  # a view over the record's bytes


def test_defaults_and_unknown_fields() -> None:
    wire = {"v": 1, "type": "scalar", "trial": "t", "ts": 1, "mode": "TRAIN", "step": 2,
            "name": "loss", "value": 3, "added_in_a_later_version": [1, 2]}
    event = decode(encode(wire))
    assert (event.worker, event.gstep, event.collections, event.value, event.ts) == ("0", 2, (), 3.0, 1.0)


def base(kind: str = "scalar", **changes) -> dict:
    wires = {
        "scalar": to_wire(EVENTS[0]),
        "tensor": to_wire(EVENTS[2]),
        "log": to_wire(EVENTS[4]),
        "metric": to_wire(EVENTS[6]),
        "alert": to_wire(EVENTS[7]),
    }
    wire = dict(wires[kind])
    for key, value in changes.items():
        if value is DELETE:
            wire.pop(key)
        else:
            wire[key] = value
    return wire


DELETE = object()

REJECTIONS = [
    # (description, wire, field named, part of the message)
    ("version other than 1", base(v=2), "v", "unsupported protocol version: 2"),
    ("version missing", base(v=DELETE), "v", "missing"),
    ("version as string", base(v="1"), "v", "unsupported protocol version: '1'"),
    ("unknown type", base(type="image"), "type", "'image'"),
    ("trial missing", base(trial=DELETE), "trial", "missing"),
    ("trial empty", base(trial=""), "trial", "1..256"),
    ("trial too long", base(trial="x" * (MAX_TRIAL_CHARS + 1)), "trial", "1..256"),
    ("trial not a string", base(trial=7), "trial", "got 7"),
    ("worker too long", base(worker="w" * 129), "worker", "1..128"),
    ("worker empty", base(worker=""), "worker", "1..128"),
    ("ts missing", base(ts=DELETE), "ts", "missing"),
    ("ts a string", base(ts="1.0"), "ts", "got '1.0'"),
    ("ts not finite", base(ts=math.nan), "ts", "finite"),
    ("mode unknown", base(mode="TEST"), "mode", "'TEST'"),
    ("step negative", base(step=-1), "step", "got -1"),
    ("step a float", base(step=1.0), "step", "got 1.0"),
    ("step a bool", base(step=True), "step", "got True"),
    ("global_step negative", base(global_step=-3), "global_step", "got -3"),
    ("GLOBAL with a different global_step", base(mode="GLOBAL", step=3, global_step=4), "global_step",
     "must equal step"),
    ("name missing", base(name=DELETE), "name", "missing"),
    ("collections not a list", base(collections="losses"), "collections", "'losses'"),
    ("collection not a string", base(collections=["ok", 3]), "collections", "got 3"),
    ("scalar value a string", base(value="0.5"), "value", "got '0.5'"),
    ("scalar value missing", base(value=DELETE), "value", "missing"),
    ("tensor without data or reductions", base("tensor", data=DELETE), "data", "'data' or 'reductions'"),
    ("tensor data not bin", base("tensor", data="abc"), "data", "bin"),
    ("tensor dtype unknown", base("tensor", dtype="complex64"), "dtype", "'complex64'"),
    ("tensor dtype missing", base("tensor", dtype=DELETE), "dtype", "missing"),
    ("tensor shape missing", base("tensor", shape=DELETE), "shape", "missing"),
    ("tensor shape negative", base("tensor", shape=[-2, -3]), "shape", "ints in 0..2147483647"),
    ("tensor data length", base("tensor", shape=[2, 4]), "data", "!= product(shape [2, 4]) x itemsize = 32"),
    ("zero-size tensor with an absurd dimension", base("tensor", shape=[2**40, 0], data=b""), "shape",
     "ints in 0..2147483647"),
    ("reduction unknown", base("tensor", reductions={"median": 1.0}), "reductions", "'median'"),
    ("reduction value a string", base("tensor", reductions={"mean": "1"}), "reductions.mean", "got '1'"),
    ("log stream unknown", base("log", stream="stdin"), "stream", "'stdin'"),
    ("log seq negative", base("log", seq=-1), "seq", "got -1"),
    ("log line not a string", base("log", line=b"x"), "line", "got b'x'"),
    ("log final not a bool", base("log", final=1), "final", "got 1"),
    ("log session empty", base("log", session=""), "session", "1..64"),
    ("metric objective not a bool", base("metric", objective=1), "objective", "got 1"),
    ("alert tensors not a list", base("alert", tensors="loss"), "tensors", "'loss'"),
    ("alert details not a map", base("alert", details=[]), "details", "a map"),
    ("alert id missing", base("alert", id=DELETE), "id", "missing"),
]


@pytest.mark.parametrize("wire,field,message", [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS])
def test_rejections_name_the_field_and_the_value(wire, field, message) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(encode(wire))
    assert info.value.field == field
    assert message in str(info.value)
    assert str(info.value).startswith(f"field {field!r}: ")


def test_not_a_map() -> None:
    with pytest.raises(ProtocolError, match="expected a map, got \\[1, 2\\]"):
        decode(msgpack.packb([1, 2]))


def test_not_msgpack() -> None:
    with pytest.raises(ProtocolError, match="not a msgpack record"):
        decode(b"\xc1")


def test_extension_types_are_refused() -> None:
    wire = base()
    wire["value"] = msgpack.ExtType(5, b"abc")
    with pytest.raises(ProtocolError, match="extension type 5"):
        decode(msgpack.packb(wire))


def test_invalid_utf8_makes_the_event_invalid() -> None:
    raw = encode(base(name="LOSSNAME"))
    raw = raw.replace(b"LOSSNAME", b"LOSS\xff\xfeME")
    with pytest.raises(ProtocolError, match="field 'name': not valid UTF-8"):
        decode(raw)


@pytest.mark.parametrize("field,changes", [
    ("message", {"message": "PLACEHOLDER"}),
    ("tensors", {"tensors": ["PLACEHOLDER"]}),
    ("details", {"details": {"tensor": "PLACEHOLDER"}}),
    ("details", {"details": {"PLACEHOLDER": 1.0}}),
])
def test_invalid_utf8_anywhere_in_an_alert_makes_it_invalid(field, changes) -> None:
    raw = encode(base("alert", **changes)).replace(b"PLACEHOLDER", b"PLACE\xff\xfeLDER")
    with pytest.raises(ProtocolError, match=f"field '{field}': not valid UTF-8"):
        decode(raw)


def test_replay_file_skips_invalid_objects_and_stops_at_undecodable_bytes() -> None:
    good = [encode(e) for e in EVENTS[:3]]
    invalid = encode(base(step=-1))
    stream = io.BytesIO(good[0] + invalid + good[1] + good[2] + b"\xc1\xc1garbage" + good[0])
    result = FileReadResult()
    events = list(iter_file(stream, result, chunk=7))  # tiny chunks: objects straddle reads
    assert events == EVENTS[:3]
    assert result.invalid == 1 and "field 'step'" in result.reasons[0]
    assert result.undecodable_at == sum(map(len, good)) + len(invalid)


def test_replay_file_with_a_truncated_last_object_reports_its_offset() -> None:
    good = encode(EVENTS[0])
    result = FileReadResult()
    events = list(iter_file(io.BytesIO(good + good[:-3]), result))
    assert events == [EVENTS[0]]
    assert result.undecodable_at == len(good)


def test_replay_file_with_bad_utf8_skips_that_object_only() -> None:
    bad = encode(base(name="LOSSNAME")).replace(b"LOSSNAME", b"LOSS\xff\xfeME")
    result = FileReadResult()
    events = list(iter_file(io.BytesIO(bad + encode(EVENTS[0])), result))
    assert events == [EVENTS[0]] and result.invalid == 1 and result.undecodable_at is None
