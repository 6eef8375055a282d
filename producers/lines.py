"""Split captured output into log lines the way docs/rules.md ("Metric definitions") says, incrementally.

The rule, for a whole output: split on ``\\n``, drop one trailing ``\\r`` from each line, split what
remains on ``\\r`` (progress bars rewrite a terminal line with ``\\r``); every piece is one line. A
tap cannot wait for the whole output, so :class:`LineSplitter` emits a piece as soon as its ``\\r``
or ``\\n`` arrives, with the same result for any way the bytes are chunked: a ``\\n`` right after a
``\\r`` ends nothing more (that ``\\r`` was the line's trailing one).

>>> splitter = LineSplitter()
>>> splitter.feed(b"epoch 1\\r\\n 10%\\r 50%") + splitter.feed(b"\\r100%\\nbye")
['epoch 1', ' 10%', ' 50%', '100%']
>>> splitter.finish()
['bye']
>>> split_output(b"a\\r\\rb\\nc\\r\\n")
['a', '', 'b', 'c']
"""

from __future__ import annotations

import re

# A line longer than this is emitted in pieces of this size, so that a process that never writes
# a newline cannot grow the tap's memory without bound (the protocol allows 1 Mi characters).
MAX_LINE_BYTES = 256 * 1024


def split_output(data: bytes) -> list[str]:
    """The reference rule applied to a complete output (also what :class:`LineSplitter` yields)."""
    return split_lines(_decode(data))


def split_lines(text: str) -> list[str]:
    """The rule on text: ``"a\\r\\nb"`` gives ``["a", "b"]``; an empty text has no lines."""
    lines = text.split("\n")
    last = lines.pop()
    if last:  # text that does not end with a newline still has a last line
        lines.append(last)
    pieces: list[str] = []
    for line in lines:
        pieces.extend((line[:-1] if line.endswith("\r") else line).split("\r"))
    return pieces


class LineSplitter:
    """Feed bytes as they come; get back the lines they complete, decoded (bad UTF-8 replaced)."""

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._pending = bytearray()
        self._after_cr = False  # the last byte seen was a \r that ended a piece
        self._max = max_line_bytes

    def feed(self, data: bytes) -> list[str]:
        out: list[str] = []
        start = 0
        for index in _line_breaks(data):
            piece = data[start:index]
            if data[index] == 0x0A and not piece and not self._pending and self._after_cr:
                self._after_cr = False  # "\r\n": the \r already ended this line
            else:
                out.append(self._take(piece))
                self._after_cr = data[index] == 0x0D
            start = index + 1
        rest = data[start:]
        if rest:
            self._after_cr = False
            self._pending += rest
            while len(self._pending) >= self._max:
                out.append(_decode(bytes(self._pending[:self._max])))
                del self._pending[:self._max]
        return out

    def finish(self) -> list[str]:
        """The last line, if the output did not end with a line break."""
        if not self._pending:
            return []
        return [self._take(b"")]

    def _take(self, tail: bytes) -> str:
        if self._pending:
            piece = bytes(self._pending) + tail
            self._pending.clear()
        else:
            piece = tail
        return _decode(piece)


_BREAK = re.compile(rb"[\r\n]")


def _line_breaks(data: bytes) -> list[int]:
    return [match.start() for match in _BREAK.finditer(data)]


def _decode(piece: bytes) -> str:
    return piece.decode("utf-8", errors="replace")
