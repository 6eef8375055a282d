"""Encoding and decoding one record of the wire protocol, version 1 (docs/protocol.md).

The training process encodes events with it, the sidecar decodes and validates them with it.
Every record is one msgpack map with string keys.

Decoding is strict: no msgpack extension types, bounded sizes, no coercion between types, known
dtypes only, and every rejection is a :class:`ProtocolError` naming the field and the value.

>>> from trainsentry.protocol.events import ScalarEvent
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

from collections.abc import Mapping
from typing import Any

import msgpack

from .events import MAX_LINE_CHARS, MAX_RECORD_BYTES, SCAN_ABOVE_BYTES, VERSION, Event, ProtocolError
from .shape_scan import check_shape
from .validation import validate

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

def unpacker(**extra: Any) -> msgpack.Unpacker:
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
    if len(data) > SCAN_ABOVE_BYTES:  # smaller records cannot hold more values than the bound
        check_shape(data)
    try:
        obj = msgpack.unpackb(data, **_UNPACKB_OPTIONS)
    except ProtocolError:
        raise
    except Exception as exc:  # msgpack raises several types for malformed bytes
        raise ProtocolError("value", f"not a msgpack record: {type(exc).__name__}: {exc}") from None
    return validate(obj)
