"""Reading a replay file: concatenated msgpack events, any types mixed, in the order written.

An object that is not a valid event is skipped and counted; bytes that cannot be decoded end the
file, with their byte offset reported, and everything before them is kept (docs/protocol.md,
"Replay files").

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

from dataclasses import dataclass, field
from typing import BinaryIO, Iterator

import msgpack

from .codec import unpacker
from .events import Event, ProtocolError
from .validation import validate


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
    stream_unpacker = unpacker()
    fed = consumed = 0
    while True:
        buf = stream.read(chunk)
        if not buf:
            break
        stream_unpacker.feed(buf)
        fed += len(buf)
        while True:
            start = consumed
            try:
                obj = stream_unpacker.unpack()
            except msgpack.OutOfData:
                break
            except Exception:
                result.undecodable_at = start
                return
            consumed = stream_unpacker.tell()
            try:
                yield validate(obj)
            except ProtocolError as exc:
                result.invalid += 1
                if len(result.reasons) < 100:
                    result.reasons.append(f"offset {start}: {exc}")
    if consumed < fed:  # a truncated last object
        result.undecodable_at = consumed
