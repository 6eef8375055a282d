"""The snapshot codec: round trips of state values, and refusals of what is not one."""

from __future__ import annotations

import pickle
from collections import deque

import numpy as np
import pytest

from trainsentry.consumers.state import SnapshotError, decode_snapshot, encode_snapshot


class Window:
    __slots__ = ("saved", "last")

    def __init__(self) -> None:
        self.saved: deque = deque(maxlen=4)
        self.last = None


def test_state_values_round_trip():
    window = Window()
    window.saved.extend([(1, 0.5, 1e9), (2, np.float32(0.25), 1e9)])
    weights = np.arange(12, dtype=np.float16).reshape(3, 4)[:, 1:]  # a view, not contiguous
    value = {("0", "TRAIN", "loss"): window, "w": weights, "sets": ({1, 2}, frozenset({"a"})),
             "big": 2**70, "none": None, "bytes": b"\x00\xff", "complex": 1 + 2j}
    back = decode_snapshot(encode_snapshot(value, schema="s"), schema="s", classes=[Window])
    restored = back[("0", "TRAIN", "loss")]
    assert type(restored) is Window and restored.saved == window.saved
    assert restored.saved.maxlen == 4 and type(restored.saved[1][1]) is np.float32
    assert back["w"].dtype == np.float16 and np.array_equal(back["w"], weights)
    assert back["sets"] == value["sets"] and back["big"] == 2**70 and back["complex"] == 1 + 2j


def test_a_class_not_given_is_refused():
    data = encode_snapshot(Window(), schema="s")
    with pytest.raises(SnapshotError, match="holds test_snapshot_codec.Window|holds .*Window"):
        decode_snapshot(data, schema="s", classes=())


def test_an_array_of_objects_cannot_be_taken():
    with pytest.raises(SnapshotError, match="cannot be taken: an array of dtype object"):
        encode_snapshot(np.array([{"a": 1}], dtype=object), schema="s")


def test_another_schema_is_refused():
    with pytest.raises(SnapshotError, match="another version of trainsentry or with another"):
        decode_snapshot(encode_snapshot([], schema="one"), schema="two", classes=())


@pytest.mark.parametrize("args, problem", [
    (("<f4", (3,), b"\x00" * 8), "array bytes do not match its shape"),
    (("|O", (1,), b"\x00" * 8), "not a numeric dtype"),
    (("<f4", (-1,), b""), "bad array shape"),
    (("<f4", (1,) * 100, b"\x00" * 4), "bad array shape"),
    (("V8", (1,), b"\x00" * 8), "not a numeric dtype"),
])
def test_forged_arrays_are_refused(args, problem):
    from trainsentry.consumers.state import snapshot as codec

    class Forged:
        def __reduce__(self):
            return codec._array, args

    body = pickle.dumps(Forged(), protocol=5)
    data = encode_snapshot(None, schema="s")
    header = data[:len(data) - len(pickle.dumps(None, protocol=5)) - 16]
    forged = header + codec._checksum(body) + body
    with pytest.raises(SnapshotError, match=problem):
        decode_snapshot(forged, schema="s", classes=())


def test_not_bytes_is_refused():
    with pytest.raises(SnapshotError, match="must be bytes, got str"):
        decode_snapshot("TSSTATE", schema="s", classes=())
