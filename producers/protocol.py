"""The trainsentry wire protocol, version 1 (PROTOCOL.md).

One module for both sides: the training process encodes events with it, the sidecar decodes and
validates them with it. Every record is one msgpack map with string keys.

Decoding is strict: no msgpack extension types, bounded sizes, no coercion between types, known
dtypes only, and every rejection is a :class:`ProtocolError` naming the field and the value.

>>> ev = ScalarEvent(trial="run-1", ts=1.5, mode="TRAIN", step=3, name="loss", value=0.25)
>>> decode(encode(ev)) == ev
True
>>> try:
...     decode(encode({"v": 2, "type": "scalar"}))
... except ProtocolError as exc:
...     print(exc)
field 'v': unsupported protocol version: 2
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterator, Mapping, Union

import msgpack
import numpy as np

VERSION = 1

MODES = frozenset({"TRAIN", "EVAL", "PREDICT", "GLOBAL"})
STREAMS = frozenset({"stdout", "stderr"})
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
MAX_NAME_CHARS = 1024
MAX_COLLECTIONS = 64
MAX_DIMS = 32
MAX_LINE_CHARS = 1024 * 1024
MAX_INT = 2**63 - 1

_UNPACK_LIMITS = dict(
    max_buffer_size=MAX_RECORD_BYTES,
    max_str_len=MAX_LINE_CHARS * 4,
    max_bin_len=MAX_RECORD_BYTES,
    max_array_len=1_000_000,
    max_map_len=100_000,
    max_ext_len=MAX_RECORD_BYTES,  # ext_hook refuses every extension with a clear reason
)


class ProtocolError(ValueError):
    """An event that does not follow the protocol; the message names the field and the value."""

    def __init__(self, field_name: str, problem: str) -> None:
        super().__init__(f"field {field_name!r}: {problem}")
        self.field = field_name
        self.problem = problem


@dataclass(frozen=True)
class Topics:
    """The topic names, all under one configurable prefix."""

    prefix: str = "trainsentry"

    @property
    def tensors(self) -> str:
        return f"{self.prefix}.tensors"

    @property
    def logs(self) -> str:
        return f"{self.prefix}.logs"

    @property
    def metrics(self) -> str:
        return f"{self.prefix}.metrics"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}.deadletter"

    def all(self) -> tuple[str, ...]:
        return (self.tensors, self.logs, self.metrics, self.alerts, self.deadletter)


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
    def from_array(cls, array: np.ndarray, **fields: Any) -> "TensorEvent":
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

    type = "alert"


Event = Union[TensorEvent, ScalarEvent, LogEvent, MetricEvent, AlertEvent]


# --- encoding -------------------------------------------------------------------------------

def to_wire(event: Event) -> dict[str, Any]:
    """The msgpack map of an event: optional fields left out when unset."""
    out: dict[str, Any] = {"v": VERSION, "type": event.type}
    for name in event.__slots__:
        value = getattr(event, name)
        if value is None:
            continue
        if isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def encode(event: Event | Mapping[str, Any]) -> bytes:
    """msgpack bytes of an event (or of a raw map, for tests and tools)."""
    obj = event if isinstance(event, Mapping) else to_wire(event)
    return msgpack.packb(obj, use_bin_type=True)


# --- decoding -------------------------------------------------------------------------------

def _unpacker(**extra: Any) -> msgpack.Unpacker:
    # surrogateescape keeps one bad string from breaking the stream; validation then rejects it.
    return msgpack.Unpacker(
        raw=False, strict_map_key=False, unicode_errors="surrogateescape",
        ext_hook=_reject_ext, **_UNPACK_LIMITS, **extra,
    )


def _reject_ext(code: int, data: bytes) -> Any:
    raise ProtocolError("value", f"msgpack extension type {code} is not allowed")


_UNPACKB_OPTIONS = dict(
    raw=False, strict_map_key=False, unicode_errors="surrogateescape", ext_hook=_reject_ext,
    **{k: v for k, v in _UNPACK_LIMITS.items() if k != "max_buffer_size"},
)


def decode(data: bytes) -> Event:
    """Decode and validate one record; :class:`ProtocolError` if it is not a valid event."""
    if len(data) > MAX_RECORD_BYTES:
        raise ProtocolError("value", f"record of {len(data)} bytes exceeds {MAX_RECORD_BYTES}")
    try:
        obj = msgpack.unpackb(data, **_UNPACKB_OPTIONS)
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several types for malformed bytes
        raise ProtocolError("value", f"not a msgpack record: {type(exc).__name__}: {exc}") from None
    return validate(obj)


@dataclass
class FileReadResult:
    """What reading one replay file found besides its events."""

    invalid: int = 0
    reasons: list[str] = field(default_factory=list)
    undecodable_at: int | None = None  # byte offset where reading stopped, if it did


def iter_file(stream: BinaryIO, result: FileReadResult, chunk: int = 1 << 20) -> Iterator[Event]:
    """Yield the valid events of a replay file; count the rest in ``result``.

    Invalid objects are skipped; bytes that cannot be decoded end the file, and their byte offset is
    recorded (everything before them has been yielded).
    """
    unpacker = _unpacker()
    fed = consumed = 0
    while True:
        buf = stream.read(chunk)
        if not buf:
            break
        unpacker.feed(buf)
        fed += len(buf)
        while True:
            start = consumed
            try:
                obj = unpacker.unpack()
            except msgpack.OutOfData:
                break
            except Exception:
                result.undecodable_at = start
                return
            consumed = unpacker.tell()
            try:
                yield validate(obj)
            except ProtocolError as exc:
                result.invalid += 1
                if len(result.reasons) < 100:
                    result.reasons.append(f"offset {start}: {exc}")
    if consumed < fed:  # a truncated last object
        result.undecodable_at = consumed


def _fail(name: str, value: Any, expected: str) -> ProtocolError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ProtocolError(name, f"expected {expected}, got {shown}")


def _str(obj: Mapping[str, Any], name: str, lo: int = 1, hi: int = MAX_NAME_CHARS) -> str:
    value = obj.get(name)
    if value is None:
        raise ProtocolError(name, "missing required field")
    if type(value) is not str:
        raise _fail(name, value, "a string")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError(name, f"not valid UTF-8: {value!r}"[:120]) from None
    if not lo <= len(value) <= hi:
        raise _fail(name, value, f"a string of {lo}..{hi} characters")
    return value


def _int(obj: Mapping[str, Any], name: str, required: bool = True) -> int | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise ProtocolError(name, "missing required field")
        return None
    if type(value) is not int or not 0 <= value <= MAX_INT:
        raise _fail(name, value, "an int >= 0")
    return value


def _float(obj: Mapping[str, Any], name: str, finite: bool = False) -> float:
    value = obj.get(name)
    if value is None:
        raise ProtocolError(name, "missing required field")
    if type(value) is float:
        if finite and not math.isfinite(value):
            raise _fail(name, value, "a finite number")
        return value
    if type(value) is int:
        return float(value)
    raise _fail(name, value, "a number")


def _choice(obj: Mapping[str, Any], name: str, allowed: frozenset[str]) -> str:
    value = obj.get(name)
    if value is None:
        raise ProtocolError(name, "missing required field")
    if type(value) is not str or value not in allowed:
        raise _fail(name, value, "one of " + ", ".join(sorted(allowed)))
    return value


def _worker(obj: Mapping[str, Any]) -> str:
    return "0" if obj.get("worker") is None else _str(obj, "worker", 1, MAX_WORKER_CHARS)


def _collections(obj: Mapping[str, Any]) -> tuple[str, ...]:
    value = obj.get("collections")
    if value is None:
        return ()
    if type(value) is not list or len(value) > MAX_COLLECTIONS:
        raise _fail("collections", value, f"a list of at most {MAX_COLLECTIONS} strings")
    for item in value:
        if type(item) is not str or not 1 <= len(item) <= MAX_NAME_CHARS:
            raise _fail("collections", item, "a non-empty string")
        if not item.isascii():
            _str({"collections": item}, "collections")
    return tuple(value)


def _steps(obj: Mapping[str, Any], mode: str) -> tuple[int, int | None]:
    step = _int(obj, "step")
    global_step = _int(obj, "global_step", required=False)
    if mode == "GLOBAL" and global_step is not None and global_step != step:
        raise ProtocolError(
            "global_step", f"must equal step ({step}) in mode GLOBAL, got {global_step}")
    return step, global_step


def _tensor(obj: Mapping[str, Any], trial: str, ts: float, worker: str) -> TensorEvent:
    mode = _choice(obj, "mode", MODES)
    step, global_step = _steps(obj, mode)
    name = _str(obj, "name")
    collections = _collections(obj)
    data = obj.get("data")
    reductions = obj.get("reductions")
    if data is None and reductions is None:
        raise ProtocolError("data", "a tensor needs 'data' or 'reductions'")
    dtype = shape = None
    if data is not None:
        if type(data) is not bytes:
            raise _fail("data", data, "bin")
        dtype = _choice(obj, "dtype", frozenset(DTYPES))
        raw_shape = obj.get("shape")
        if raw_shape is None:
            raise ProtocolError("shape", "missing required field (with 'data')")
        if type(raw_shape) is not list or len(raw_shape) > MAX_DIMS or any(
                type(d) is not int or d < 0 for d in raw_shape):
            raise _fail("shape", raw_shape, f"a list of at most {MAX_DIMS} ints >= 0")
        shape = tuple(raw_shape)
        expected = math.prod(shape) * DTYPES[dtype].itemsize
        if len(data) != expected:
            raise ProtocolError(
                "data", f"length {len(data)} != product(shape {list(shape)}) x itemsize = {expected}")
    if reductions is not None:
        if type(reductions) is not dict:
            raise _fail("reductions", reductions, "a map of reduction name to number")
        for key, value in reductions.items():
            if key not in REDUCTIONS:
                raise _fail("reductions", key, "one of " + ", ".join(sorted(REDUCTIONS)))
            if type(value) is int:
                reductions[key] = float(value)
            elif type(value) is not float:
                raise _fail(f"reductions.{key}", value, "a number")
    return TensorEvent(trial, ts, mode, step, name, worker, global_step, collections,
                       dtype, shape, data, reductions)


def _scalar(obj: Mapping[str, Any], trial: str, ts: float, worker: str) -> ScalarEvent:
    mode = _choice(obj, "mode", MODES)
    step, global_step = _steps(obj, mode)
    return ScalarEvent(trial, ts, mode, step, _str(obj, "name"), _float(obj, "value"),
                       worker, global_step, _collections(obj))


def _log(obj: Mapping[str, Any], trial: str, ts: float, worker: str) -> LogEvent:
    stream = _choice(obj, "stream", STREAMS)
    line = obj.get("line")
    if type(line) is not str:
        raise ProtocolError("line", "missing required field") if line is None else _fail(
            "line", line, "a string")
    if len(line) > MAX_LINE_CHARS:
        raise ProtocolError("line", f"{len(line)} characters exceed {MAX_LINE_CHARS}")
    _str({"line": line}, "line", 0, MAX_LINE_CHARS)
    final = obj.get("final")
    if final is not None and type(final) is not bool:
        raise _fail("final", final, "a bool")
    return LogEvent(trial, ts, stream, line, _int(obj, "seq"), worker, final)


def _metric(obj: Mapping[str, Any], trial: str, ts: float, worker: str) -> MetricEvent:
    objective = obj.get("objective")
    if objective is not None and type(objective) is not bool:
        raise _fail("objective", objective, "a bool")
    return MetricEvent(trial, ts, _str(obj, "name"), _float(obj, "value"), _int(obj, "step"),
                       worker, objective)


def _alert(obj: Mapping[str, Any], trial: str, ts: float, worker: str) -> AlertEvent:
    step = obj.get("step")
    if type(step) is not int:
        raise _fail("step", step, "an int")
    tensors = obj.get("tensors")
    if type(tensors) is not list or any(type(t) is not str for t in tensors):
        raise _fail("tensors", tensors, "a list of strings")
    details = obj.get("details")
    if type(details) is not dict:
        raise _fail("details", details, "a map")
    message = obj.get("message")
    if type(message) is not str:
        raise _fail("message", message, "a string")
    return AlertEvent(trial, ts, _str(obj, "id"), _str(obj, "rule"), _str(obj, "rule_type"),
                      _choice(obj, "mode", MODES), step, tuple(tensors), message, details,
                      _float(obj, "event_ts"), worker)


_BUILDERS = {"tensor": _tensor, "scalar": _scalar, "log": _log, "metric": _metric, "alert": _alert}
_ITEMSIZES = {name: dtype.itemsize for name, dtype in DTYPES.items()}


def _common_form(obj: dict) -> ScalarEvent | TensorEvent | None:
    """The event, if ``obj`` is a scalar or a tensor with every field in its most common form.

    The hot path of every consumer, with the bounds of the full checks inlined: ASCII strings,
    float ``ts`` and ``value``, a tensor with ``data`` and without ``reductions``. Whatever else
    returns ``None`` and goes through the full checks, which accept it or name what is wrong.
    """
    version = obj.get("v")
    if version != VERSION or type(version) is not int:
        return None
    kind = obj.get("type")
    if kind != "scalar" and kind != "tensor":
        return None
    trial, ts, mode, step, name = (
        obj.get("trial"), obj.get("ts"), obj.get("mode"), obj.get("step"), obj.get("name"))
    if not (type(trial) is str and 0 < len(trial) <= MAX_TRIAL_CHARS and trial.isascii()
            and type(ts) is float and -math.inf < ts < math.inf
            and type(mode) is str and mode in MODES
            and type(step) is int and 0 <= step <= MAX_INT
            and type(name) is str and 0 < len(name) <= MAX_NAME_CHARS and name.isascii()):
        return None
    worker = obj.get("worker")
    if worker is None:
        worker = "0"
    elif not (type(worker) is str and 0 < len(worker) <= MAX_WORKER_CHARS and worker.isascii()):
        return None
    global_step = obj.get("global_step")
    if global_step is not None and not (type(global_step) is int and 0 <= global_step <= MAX_INT
                                        and (global_step == step or mode != "GLOBAL")):
        return None
    collections = obj.get("collections")
    if collections is None:
        collections = ()
    elif type(collections) is list and len(collections) <= MAX_COLLECTIONS:
        for item in collections:
            if type(item) is not str or not 0 < len(item) <= MAX_NAME_CHARS or not item.isascii():
                return None
        collections = tuple(collections)
    else:
        return None
    if kind == "scalar":
        value = obj.get("value")
        if type(value) is not float:
            return None
        return ScalarEvent(trial, ts, mode, step, name, value, worker, global_step, collections)
    data, dtype, shape = obj.get("data"), obj.get("dtype"), obj.get("shape")
    if (type(data) is not bytes or obj.get("reductions") is not None or type(dtype) is not str
            or type(shape) is not list or len(shape) > MAX_DIMS):
        return None
    size = _ITEMSIZES.get(dtype)
    if size is None:
        return None
    for dim in shape:
        if type(dim) is not int or dim < 0:
            return None
        size *= dim
    if len(data) != size:
        return None
    return TensorEvent(trial, ts, mode, step, name, worker, global_step, collections, dtype,
                       tuple(shape), data, None)


def validate(obj: Any) -> Event:
    """Check a decoded msgpack object against the protocol and build its event."""
    if type(obj) is dict:
        event = _common_form(obj)
        if event is not None:
            return event
    return _checked(obj)


def _checked(obj: Any) -> Event:
    """Every check of the protocol, one field at a time; the first problem found is raised."""
    if type(obj) is not dict:
        raise _fail("value", obj, "a map")
    version = obj.get("v")
    if version is None:
        raise ProtocolError("v", "missing required field")
    if version != VERSION or type(version) is not int:
        raise ProtocolError("v", f"unsupported protocol version: {version!r}")
    kind = obj.get("type")
    builder = _BUILDERS.get(kind) if type(kind) is str else None
    if builder is None:
        raise _fail("type", kind, "one of " + ", ".join(_BUILDERS))
    trial = _str(obj, "trial", 1, MAX_TRIAL_CHARS)
    return builder(obj, trial, _float(obj, "ts", finite=True), _worker(obj))
