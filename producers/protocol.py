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

from dataclasses import dataclass, field
from typing import Any, BinaryIO, Iterator, Mapping

import msgpack

from .events import (
    DTYPES, MAX_COLLECTIONS, MAX_DIM_SIZE, MAX_DIMS, MAX_INT, MAX_LINE_CHARS, MAX_NAME_CHARS, MAX_RECORD_BYTES,
    MAX_TRIAL_CHARS, MAX_WORKER_CHARS, MODES, REDUCTIONS, STREAMS, VERSION, AlertEvent, Event,
    LogEvent, MetricEvent, ProtocolError, ScalarEvent, TensorEvent, Topics,
)
from .validation import validate

__all__ = [
    "DTYPES", "MAX_COLLECTIONS", "MAX_DIM_SIZE", "MAX_DIMS", "MAX_INT", "MAX_LINE_CHARS", "MAX_NAME_CHARS",
    "MAX_RECORD_BYTES", "MAX_TRIAL_CHARS", "MAX_WORKER_CHARS", "MODES", "REDUCTIONS", "STREAMS",
    "VERSION", "AlertEvent", "Event", "FileReadResult", "LogEvent", "MetricEvent", "ProtocolError",
    "ScalarEvent", "TensorEvent", "Topics", "decode", "encode", "iter_file", "to_wire", "validate",
]

_UNPACK_LIMITS = dict(
    max_buffer_size=MAX_RECORD_BYTES,
    max_str_len=MAX_LINE_CHARS * 4,
    max_bin_len=MAX_RECORD_BYTES,
    max_array_len=1_000_000,
    max_map_len=100_000,
    max_ext_len=MAX_RECORD_BYTES,  # ext_hook refuses every extension with a clear reason
)


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
