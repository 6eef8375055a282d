"""A look at a msgpack record's structure before it is decoded: depth, number of values, extensions.

Decoding builds every value, also in fields that validation then ignores: 16 MB of empty arrays
would become more than a gigabyte of Python lists. :func:`check_shape` walks the record's headers
without building anything (a ``bin`` or ``str`` payload is jumped over whole), so it costs a few
microseconds per value whatever the payload sizes, and refuses a record that nests deeper than
:data:`~.events.MAX_DEPTH`, holds more than :data:`~.events.MAX_ELEMENTS` values or uses an
extension type (the timestamp extension included), naming the first problem.

>>> import msgpack
>>> check_shape(msgpack.packb({"v": 1, "data": b"x" * 100_000}))
>>> check_shape(msgpack.packb([[]] * 200_000))
Traceback (most recent call last):
...
trainsentry.protocol.events.ProtocolError: field 'value': more than 100000 values in one record
>>> check_shape(msgpack.packb(msgpack.Timestamp(0, 0)))
Traceback (most recent call last):
...
trainsentry.protocol.events.ProtocolError: field 'value': msgpack extension type -1 is not allowed
"""

from __future__ import annotations

import struct

from .events import MAX_DEPTH, MAX_ELEMENTS, ProtocolError

_U8, _U16, _U32 = struct.Struct(">B"), struct.Struct(">H"), struct.Struct(">I")

# Fixed-size scalars by first byte: bytes to skip after the type byte.
_FIXED = {0xc0: 0, 0xc2: 0, 0xc3: 0, 0xca: 4, 0xcb: 8, 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8,
          0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8}
# Byte strings and text by first byte: (bytes of the length field, its struct).
_SIZED = {0xc4: _U8, 0xc5: _U16, 0xc6: _U32, 0xd9: _U8, 0xda: _U16, 0xdb: _U32}
_CONTAINERS = {0xdc: (_U16, 1), 0xdd: (_U32, 1), 0xde: (_U16, 2), 0xdf: (_U32, 2)}
_EXTENSIONS = {0xc7: _U8, 0xc8: _U16, 0xc9: _U32, 0xd4: 1, 0xd5: 2, 0xd6: 4, 0xd7: 8, 0xd8: 16}


def check_shape(data: bytes, max_depth: int = MAX_DEPTH, max_elements: int = MAX_ELEMENTS) -> None:
    """Refuse ``data`` (one msgpack object) if it nests or counts beyond the bounds or uses an ext.

    Truncated or malformed bytes are left to the decoder, which names them.
    """
    view = memoryview(data)
    end = len(data)
    pos = 0
    elements = 0
    remaining: list[int] = [1]  # values still to read at each open level
    while remaining:
        if remaining[-1] == 0:
            remaining.pop()
            continue
        if pos >= end:
            return  # truncated: the decoder says so
        remaining[-1] -= 1
        elements += 1
        if elements > max_elements:
            raise ProtocolError("value", f"more than {max_elements} values in one record")
        first = view[pos]
        pos += 1
        count = 0
        if first <= 0x7f or first >= 0xe0:
            continue                                      # fixint
        if 0x80 <= first <= 0x8f:
            count = 2 * (first & 0x0f)                    # fixmap
        elif 0x90 <= first <= 0x9f:
            count = first & 0x0f                          # fixarray
        elif 0xa0 <= first <= 0xbf:
            pos += first & 0x1f                           # fixstr
            continue
        elif first in _FIXED:
            pos += _FIXED[first]
            continue
        elif first in _SIZED:
            length = _SIZED[first]
            if pos + length.size > end:
                return
            pos += length.size + length.unpack_from(view, pos)[0]
            continue
        elif first in _CONTAINERS:
            length, per_entry = _CONTAINERS[first]
            if pos + length.size > end:
                return
            count = per_entry * length.unpack_from(view, pos)[0]
            pos += length.size
        elif first in _EXTENSIONS:
            size = _EXTENSIONS[first]
            offset = pos + (size.size if isinstance(size, struct.Struct) else 0)
            code = view[offset] if offset < end else 0
            raise ProtocolError("value", f"msgpack extension type {code - 256 if code > 127 else code} "
                                         f"is not allowed")
        else:
            return  # 0xc1 (never used): the decoder refuses it
        if count:
            if len(remaining) > max_depth:  # the root counter is not a container
                raise ProtocolError("value", f"values nested deeper than {max_depth} levels")
            remaining.append(count)
