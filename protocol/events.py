"""The events of the wire protocol, version 1 (docs/protocol.md), its bounds and its one error type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

VERSION = 1

MODES = frozenset({"TRAIN", "EVAL", "PREDICT", "GLOBAL"})
STREAMS = frozenset({"stdout", "stderr"})
SEVERITIES = ("info", "warning", "error")  # in rising order
REDUCTIONS = frozenset({"min", "max", "mean", "std", "variance", "l1", "l2", "count", "nan_count"})
DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name).newbyteorder("<")
    for name in (
        "float16", "float32", "float64",
        "int8", "int16", "int32", "int64",
        "uint8", "uint16", "uint32", "uint64",
        "bool",
    )
}

# Bounds: a record that exceeds them is rejected before any array is built from it.
MAX_RECORD_BYTES = 64 * 1024 * 1024
MAX_TRIAL_CHARS = 256
MAX_WORKER_CHARS = 128
MAX_SESSION_CHARS = 64
MAX_NAME_CHARS = 1024
MAX_COLLECTIONS = 64
MAX_DIMS = 32
MAX_DIM_SIZE = 2**31 - 1  # one dimension; a zero-size tensor must not claim an absurd shape
MAX_LINE_CHARS = 1024 * 1024
MAX_INT = 2**63 - 1
# Bounds of any decoded value (docs/protocol.md, "Limits"). A real event holds a few dozen values
# nested two or three deep (an alert's details); these leave room for far larger ones and keep a
# small record from expanding into gigabytes of objects or into deep recursion.
MAX_DEPTH = 32               # containers inside containers
MAX_ELEMENTS = 100_000       # values of every kind in one record, containers included
# A record of at most this many bytes cannot hold more than MAX_ELEMENTS values (each takes at
# least a byte); a larger one is scanned before it is decoded.
SCAN_ABOVE_BYTES = 65_536


class ProtocolError(ValueError):
    """An event that does not follow the protocol; the message names the field and the value."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"field {field_name!r}: {problem}")
        self.field = field_name
        self.problem = problem


# The input events are built once per record on the sidecar's hot path, so they are plain
# (not frozen) dataclasses: a frozen one costs 0.6 us more to build, a fifth of decoding a scalar.
# Treat them as values all the same.
@dataclass(slots=True)
class TensorEvent:
    trial: str
    ts: float
    mode: str
    step: int
    name: str
    worker: str = "0"
    global_step: int | None = None
    collections: tuple[str, ...] = ()
    dtype: str | None = None
    shape: tuple[int, ...] | None = None
    data: bytes | None = None
    reductions: Mapping[str, float] | None = None
    # Optional (added within version 1): the writer process; a new session of a worker is a
    # restarted or resumed writer, and its series start over (docs/rules.md, "Resumed runs").
    session: str | None = None

    type = "tensor"

    @property
    def gstep(self) -> int:
        return self.step if self.global_step is None else self.global_step

    def array(self) -> np.ndarray | None:
        """The tensor's values as a read-only array over the record's bytes (no copy)."""
        if self.data is None:
            return None
        return np.frombuffer(self.data, dtype=DTYPES[self.dtype]).reshape(self.shape)

    @classmethod
    def from_array(cls, array: np.ndarray, **fields: Any) -> TensorEvent:
        """Build an event carrying ``array``'s bytes (C order, little-endian)."""
        arr = np.asarray(array)
        if arr.dtype.name not in DTYPES:
            raise ProtocolError("dtype", f"unsupported dtype: {arr.dtype.name!r}")
        arr = np.ascontiguousarray(arr, dtype=DTYPES[arr.dtype.name])
        return cls(dtype=arr.dtype.name, shape=tuple(arr.shape), data=arr.tobytes(), **fields)


@dataclass(slots=True)
class ScalarEvent:
    trial: str
    ts: float
    mode: str
    step: int
    name: str
    value: float
    worker: str = "0"
    global_step: int | None = None
    collections: tuple[str, ...] = ()
    session: str | None = None  # optional, as on TensorEvent

    type = "scalar"

    @property
    def gstep(self) -> int:
        return self.step if self.global_step is None else self.global_step


@dataclass(slots=True)
class LogEvent:
    trial: str
    ts: float
    stream: str
    line: str
    seq: int
    worker: str = "0"
    # Optional (added within version 1): the last event this (trial, worker) writes. Once every
    # worker of a trial has sent one, the sidecar releases the trial's state.
    final: bool | None = None
    # Optional (added within version 1): which writer process of the (trial, worker) wrote it.
    # ``seq`` counts within a session, so a restarted writer's lines are not taken for repeats.
    session: str | None = None

    type = "log"


@dataclass(frozen=True, slots=True)
class MetricEvent:
    trial: str
    ts: float
    name: str
    value: float
    step: int
    worker: str = "0"
    objective: bool | None = None

    type = "metric"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    trial: str
    ts: float
    id: str
    rule: str
    rule_type: str
    mode: str
    step: int
    tensors: tuple[str, ...]
    message: str
    details: Mapping[str, Any]
    event_ts: float
    worker: str = "0"
    severity: str | None = None  # optional: info, warning or error, from the rule's configuration

    type = "alert"


Event = TensorEvent | ScalarEvent | LogEvent | MetricEvent | AlertEvent


# Every field each type defines; any other field is accepted and ignored (that is how v1 grows).
KNOWN_FIELDS: dict[str, frozenset[str]] = {
    "tensor": frozenset({"v", "type", "trial", "worker", "ts", "mode", "step", "global_step", "name",
                         "collections", "dtype", "shape", "data", "reductions", "session"}),
    "scalar": frozenset({"v", "type", "trial", "worker", "ts", "mode", "step", "global_step", "name",
                         "collections", "value", "session"}),
    "log": frozenset({"v", "type", "trial", "worker", "ts", "stream", "line", "seq", "final", "session"}),
    "metric": frozenset({"v", "type", "trial", "worker", "ts", "name", "value", "step", "objective"}),
    "alert": frozenset({"v", "type", "trial", "worker", "ts", "id", "rule", "rule_type", "mode", "step",
                        "tensors", "message", "details", "event_ts", "severity"}),
}
