"""The decoder's fast path accepts exactly what the full checks accept, and builds the same event."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from trainsentry.protocol import MAX_INT, ProtocolError, validate
from trainsentry.protocol.validation import _checked, _common_form

ABSENT = object()

# Each field: values in its common form, values the full checks convert or accept, and invalid ones.
TEXT = st.sampled_from(["run-1", "x" * 256, "x" * 257, "", "é", "\udcff", 7, None, b"run", ["a"]])
NUMBER = st.sampled_from([1.5, -0.0, 2, True, math.nan, math.inf, -math.inf, "1.0", None])
STEP = st.sampled_from([0, 4, MAX_INT, MAX_INT + 1, -1, 1.0, True, "4", None])
FIELDS = {
    "v": st.sampled_from([1, 1.0, True, 2, "1"]),
    "type": st.sampled_from(["scalar", "tensor", "log", ["scalar"], None]),
    "trial": TEXT,
    "ts": NUMBER,
    "worker": TEXT,
    "mode": st.sampled_from(["TRAIN", "GLOBAL", "EVAL", "TEST", 3, ["TRAIN"]]),
    "step": STEP,
    "global_step": STEP,
    "name": TEXT,
    "collections": st.sampled_from([[], ["losses"], ["a", "b"], ["x"] * 65, [""], ["é"], [3], "losses", ()]),
    "value": NUMBER,
    "dtype": st.sampled_from(["float32", "int8", "bool", "complex64", 4, None]),
    "shape": st.sampled_from([[2], [1, 2], [], [2, -1], [2.0], [True, 2], [1] * 33, "2", None]),
    "data": st.sampled_from([b"\x00" * 8, b"\x00" * 2, b"", "abc", None]),
    "reductions": st.sampled_from([None, {"mean": 1.0}, {"mean": 1}, {"median": 1.0}, []]),
}
VALID = {"v": 1, "type": "scalar", "trial": "run-1", "ts": 1.5, "mode": "TRAIN", "step": 4,
         "name": "loss", "value": 0.5, "dtype": "float32", "shape": [2], "data": b"\x00" * 8}


@st.composite
def wire_maps(draw) -> dict:
    """A valid scalar/tensor map with a few fields replaced by drawn values or removed."""
    obj = dict(VALID)
    for name in draw(st.sets(st.sampled_from(sorted(FIELDS)), max_size=4)):
        value = draw(st.one_of(FIELDS[name], st.just(ABSENT)))
        if value is ABSENT:
            obj.pop(name, None)
        else:
            obj[name] = value
    return obj


def outcome(check, obj: dict) -> str:
    """The event built (as its repr: NaN equals NaN, 1 differs from 1.0) or the rejection."""
    try:
        return repr(check(dict(obj)))
    except ProtocolError as exc:
        return f"rejected: {exc}"


@settings(max_examples=3000, deadline=None)
@given(wire_maps())
def test_fast_path_agrees_with_the_full_checks(obj) -> None:
    expected = outcome(_checked, obj)
    fast = _common_form(dict(obj))
    if fast is not None:
        assert repr(fast) == expected
    assert outcome(validate, obj) == expected
