"""Checking a decoded msgpack map against the protocol, field by field, and building its event.

Two paths with one meaning: a fast path for scalars and tensors in their most common form, and
the full checks, which accept everything else that is valid and name the first problem found.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import msgpack

from .events import (
    DTYPES,
    KNOWN_FIELDS,
    MAX_COLLECTIONS,
    MAX_DEPTH,
    MAX_DIM_SIZE,
    MAX_DIMS,
    MAX_ELEMENTS,
    MAX_INT,
    MAX_LINE_CHARS,
    MAX_NAME_CHARS,
    MAX_SESSION_CHARS,
    MAX_TRIAL_CHARS,
    MAX_WORKER_CHARS,
    MODES,
    REDUCTIONS,
    SEVERITIES,
    STREAMS,
    VERSION,
    AlertEvent,
    Event,
    LogEvent,
    MetricEvent,
    ProtocolError,
    ScalarEvent,
    TensorEvent,
)
from .rendering import brief


def _fail(name: str, value: Any, expected: str) -> ProtocolError:
    return ProtocolError(name, f"expected {expected}, got {brief(value)}")


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
            raise ProtocolError(name, f"not valid UTF-8: {brief(value)}") from None
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
                type(d) is not int or not 0 <= d <= MAX_DIM_SIZE for d in raw_shape):
            raise _fail("shape", raw_shape,
                        f"a list of at most {MAX_DIMS} ints in 0..{MAX_DIM_SIZE}")
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
                       dtype, shape, data, reductions, _session(obj))


def _scalar(obj: Mapping[str, Any], trial: str, ts: float, worker: str) -> ScalarEvent:
    mode = _choice(obj, "mode", MODES)
    step, global_step = _steps(obj, mode)
    return ScalarEvent(trial, ts, mode, step, _str(obj, "name"), _float(obj, "value"),
                       worker, global_step, _collections(obj), _session(obj))


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
    session = obj.get("session")
    if session is not None:
        session = _str(obj, "session", 1, MAX_SESSION_CHARS)
    return LogEvent(trial, ts, stream, line, _int(obj, "seq"), worker, final, session)


def _session(obj: Mapping[str, Any]) -> str | None:
    return None if obj.get("session") is None else _str(obj, "session", 1, MAX_SESSION_CHARS)


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
    for name, value in (("tensors", tensors), ("message", message), ("details", details)):
        _plain(name, value, utf8=True)
    severity = obj.get("severity")
    if severity is not None and severity not in SEVERITIES:
        raise _fail("severity", severity, "one of " + ", ".join(SEVERITIES))
    return AlertEvent(trial, ts, _str(obj, "id"), _str(obj, "rule"), _str(obj, "rule_type"),
                      _choice(obj, "mode", MODES), step, tuple(tensors), message, details,
                      _float(obj, "event_ts"), worker, severity)


def _plain(name: str, value: Any, utf8: bool) -> None:
    """``value`` holds only plain msgpack values, at most MAX_DEPTH deep and MAX_ELEMENTS many.

    No extension value (msgpack decodes the timestamp extension itself, without asking the
    ext hook); with ``utf8``, every string (keys too) decoded from valid UTF-8. Iterative: a
    value nested a thousand deep is refused, never recursed into.
    """
    pending: list[tuple[Any, int]] = [(value, 1)]  # (value, containers around it: the record's map)
    elements = 0
    while pending:
        item, depth = pending.pop()
        elements += 1
        if elements > MAX_ELEMENTS:
            raise ProtocolError(name, f"more than {MAX_ELEMENTS} values")
        kind = type(item)
        if kind is str:
            if utf8 and not item.isascii():
                _str({name: item}, name, 0, MAX_LINE_CHARS)
        elif kind is list or kind is dict:
            if depth >= MAX_DEPTH:
                raise ProtocolError(name, f"values nested deeper than {MAX_DEPTH} levels")
            if kind is list:
                pending.extend((child, depth + 1) for child in item)
            else:
                for key, child in item.items():
                    pending.append((key, depth + 1))
                    pending.append((child, depth + 1))
        elif kind is msgpack.Timestamp or kind is msgpack.ExtType:
            raise ProtocolError(name, "msgpack extension values are not allowed")


def _unknown_fields(obj: Mapping[str, Any], kind: str) -> None:
    """Fields this version does not define are ignored, but must still be plain values."""
    known = KNOWN_FIELDS[kind]
    for key, value in obj.items():
        if key not in known:
            _plain(key if type(key) is str else "value", value, utf8=False)


_BUILDERS = {"tensor": _tensor, "scalar": _scalar, "log": _log, "metric": _metric, "alert": _alert}
_ITEMSIZES = {name: dtype.itemsize for name, dtype in DTYPES.items()}
_SCALAR_REQUIRED = 8   # v, type, trial, ts, mode, step, name, value
_TENSOR_REQUIRED = 10  # v, type, trial, ts, mode, step, name, dtype, shape, data


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
    session = obj.get("session")
    if session is not None and not (type(session) is str and 0 < len(session) <= MAX_SESSION_CHARS
                                    and session.isascii()):
        return None
    # A field beyond the known ones takes the full checks (an unknown field must be plain too).
    optional = (obj.get("worker") is not None) + (global_step is not None) + (
        obj.get("collections") is not None) + (session is not None)
    if kind == "scalar":
        value = obj.get("value")
        if type(value) is not float or len(obj) != _SCALAR_REQUIRED + optional:
            return None
        return ScalarEvent(trial, ts, mode, step, name, value, worker, global_step, collections,
                           session)
    data, dtype, shape = obj.get("data"), obj.get("dtype"), obj.get("shape")
    if (type(data) is not bytes or obj.get("reductions") is not None or type(dtype) is not str
            or type(shape) is not list or len(shape) > MAX_DIMS):
        return None
    size = _ITEMSIZES.get(dtype)
    if size is None:
        return None
    for dim in shape:
        if type(dim) is not int or not 0 <= dim <= MAX_DIM_SIZE:
            return None
        size *= dim
    if len(data) != size or len(obj) != _TENSOR_REQUIRED + optional:
        return None
    return TensorEvent(trial, ts, mode, step, name, worker, global_step, collections, dtype,
                       tuple(shape), data, None, session)


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
        raise ProtocolError("v", f"unsupported protocol version: {brief(version)}")
    kind = obj.get("type")
    builder = _BUILDERS.get(kind) if type(kind) is str else None
    if builder is None:
        raise _fail("type", kind, "one of " + ", ".join(_BUILDERS))
    trial = _str(obj, "trial", 1, MAX_TRIAL_CHARS)
    event = builder(obj, trial, _float(obj, "ts", finite=True), _worker(obj))
    if len(obj) > len(KNOWN_FIELDS[kind].intersection(obj)):
        _unknown_fields(obj, kind)
    return event
