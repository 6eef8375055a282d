"""Replay files as a source: their valid events in the order written, one file after the other.

The protocol's reader decodes and validates as it reads (docs/protocol.md, "Replay files"), so
parts carry events, not records; what a file held besides its events (invalid objects, bytes that
could not be decoded) is in :attr:`ReplayFileSource.results` once the file has been read.

>>> import asyncio, tempfile
>>> from trainsentry.protocol import ScalarEvent, encode
>>> with tempfile.NamedTemporaryFile(suffix=".msgpack") as f:
...     _ = f.write(encode(ScalarEvent("run-1", 1.0, "TRAIN", 0, "loss", 0.5)) + b"\\xc1")
...     f.flush()
...     source = ReplayFileSource([f.name])
...     batch = asyncio.run(source.fetch())
...     [e.name for e in batch.parts[0].events], source.results[0][1].undecodable_at > 0
(['loss'], True)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from trainsentry.consumers.sources.base import Batch, Part, Source
from trainsentry.protocol import Event, FileReadResult, iter_file

BATCH_EVENTS = 10_000


class ReplayFileSource(Source):
    """The events of ``paths``, ``batch_events`` at a time; each part's lane is its file's path."""

    def __init__(self, paths: Sequence[str | Path], batch_events: int = BATCH_EVENTS) -> None:
        self.paths = [Path(p) for p in paths]
        self.batch_events = batch_events
        # One per file opened, in order; complete once that file has been read to its end.
        self.results: list[tuple[Path, FileReadResult]] = []
        self._pending = list(self.paths)
        self._stream: BinaryIO | None = None
        self._events: Iterator[Event] | None = None
        self._bytes_done = 0  # of the files read to their end

    def position(self) -> tuple[int, int]:
        """(bytes read, bytes of every file); may be called from another thread (progress)."""
        stream, done = self._stream, self._bytes_done
        if stream is not None:
            try:
                done += stream.tell()
            except ValueError:  # closed meanwhile: counted in _bytes_done at the next call
                pass
        return done, sum(_size(p) for p in self.paths)

    async def stop(self) -> None:
        self._close()

    async def fetch(self) -> Batch | None:
        parts: list[Part] = []
        wanted = self.batch_events
        while wanted > 0:
            if self._events is None:
                if not self._pending:
                    break
                self._open(self._pending.pop(0))
            events = list(itertools.islice(self._events, wanted))
            if events:
                parts.append(Part(str(self.results[-1][0]), events=events))
                wanted -= len(events)
            if wanted > 0:  # fewer than asked for: the file is exhausted
                self._close()
        return Batch(parts) if parts else None

    def _open(self, path: Path) -> None:
        result = FileReadResult()
        self.results.append((path, result))
        self._stream = open(path, "rb")  # noqa: SIM115 - read across fetches, closed by _close()
        self._events = iter_file(self._stream, result)

    def _close(self) -> None:
        self._events = None
        stream, self._stream = self._stream, None
        if stream is not None:
            self._bytes_done += _size(Path(stream.name))
            stream.close()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
