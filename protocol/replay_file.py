"""Reading a replay file: concatenated msgpack events, any types mixed, in the order written.

An object that is not a valid event is skipped and counted; bytes that cannot be decoded end the
file, with their byte offset reported, and everything before them is kept (docs/protocol.md,
"Replay files").

Each object is measured before it is built: one unpacker skips over it (walking its headers,
building nothing); a second one, fed the same bytes, builds it when it is at most
:data:`~.events.SCAN_ABOVE_BYTES` long, and a larger one is decoded as a Kafka record is, its
structure checked first (:func:`~.shape_scan.check_shape`). So a file is held to the limits of a
record: a small object cannot expand into millions of values.

>>> import io
>>> from trainsentry.protocol.codec import encode
>>> from trainsentry.protocol.events import ScalarEvent
>>> good = encode(ScalarEvent("run-1", 1.0, "TRAIN", 0, "loss", 0.5))
>>> result = FileReadResult()
>>> data = good + encode({"v": 1}) + bytes([0xc1])  # a valid event, an invalid one, a bad byte
>>> [e.name for e in iter_file(io.BytesIO(data), result)]
['loss']
>>> result.invalid, result.undecodable_at == len(data) - 1
(1, True)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import msgpack

from .codec import _UNPACK_LIMITS, decode, unpacker
from .events import SCAN_ABOVE_BYTES, Event, ProtocolError
from .validation import validate

MAX_REASONS = 100


@dataclass
class FileReadResult:
    """What reading one replay file found besides its events."""

    invalid: int = 0
    reasons: list[str] = field(default_factory=list)
    undecodable_at: int | None = None  # byte offset where reading stopped, if it did


def iter_file(stream: BinaryIO, result: FileReadResult, chunk: int = 1 << 20) -> Iterator[Event]:
    """Yield the valid events of a replay file; count the rest in ``result``.

    Invalid objects are skipped; bytes that cannot be decoded end the file, and their byte offset is
    recorded (everything before them has been yielded). So does an object larger than a record may
    be (:data:`~.events.MAX_RECORD_BYTES`).
    """
    measure = unpacker()  # finds where each object ends, building nothing
    # Builds what was measured. Its extension values come out as values, which validation refuses
    # by name: an error raised inside an unpacker would leave it in the middle of an object.
    build = msgpack.Unpacker(raw=False, strict_map_key=False, unicode_errors="surrogateescape",
                             **_UNPACK_LIMITS)
    fed = consumed = 0
    while True:
        buf = stream.read(chunk)
        if not buf:
            break
        try:
            measure.feed(buf)
            build.feed(buf)
        except msgpack.BufferFull:  # one object beyond MAX_RECORD_BYTES, still incomplete
            result.undecodable_at = consumed
            return
        fed += len(buf)
        while True:
            start = consumed
            try:
                measure.skip()
            except msgpack.OutOfData:
                break
            except Exception:  # malformed bytes, or nested beyond the unpacker's own stack
                result.undecodable_at = start
                return
            consumed = measure.tell()
            try:
                if consumed - start <= SCAN_ABOVE_BYTES:  # too short to hold more values than the bound
                    event = validate(build.unpack())
                else:  # read as bytes, its structure checked before it is built (as a record is)
                    event = decode(build.read_bytes(consumed - start))
            except ProtocolError as exc:
                _invalid(result, start, str(exc))
                continue
            except Exception:  # noqa: BLE001 - measured whole, yet not built: stop at it
                result.undecodable_at = start
                return
            yield event
    if consumed < fed:  # a truncated last object
        result.undecodable_at = consumed


def _invalid(result: FileReadResult, offset: int, reason: str) -> None:
    result.invalid += 1
    if len(result.reasons) < MAX_REASONS:
        result.reasons.append(f"offset {offset}: {reason}")

