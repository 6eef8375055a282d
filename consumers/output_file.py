"""Output files written whole or not at all: written beside the target, renamed over it at the end.

A command that fails or is interrupted leaves the previous file as it was (and no partial file).
``-`` is standard output, written as it comes.

>>> import pathlib, tempfile
>>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
>>> with atomic_output(str(target)) as stream:
...     _ = stream.write("done\\n")
...     target.exists()
False
>>> target.read_text()
'done\\n'
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import IO

STDOUT = "-"
PARTIAL_SUFFIX = ".partial"


class OutputFileError(Exception):
    """The output file cannot be written; the message names the path and the reason."""


class AtomicFile:
    """``path`` (or standard output for ``-``) opened for writing; :meth:`commit` publishes it."""

    def __init__(self, path: str, binary: bool = False) -> None:
        self.path = path
        self.partial = None if path == STDOUT else f"{path}{PARTIAL_SUFFIX}"
        if self.partial is None:
            self.stream: IO = sys.stdout.buffer if binary else sys.stdout
            return
        try:
            self.stream = open(self.partial, "wb" if binary else "w",  # noqa: SIM115 - until commit()
                               encoding=None if binary else "utf-8")
        except OSError as exc:
            raise OutputFileError(f"cannot write {path}: {exc.strerror or exc}") from None

    def commit(self) -> None:
        """Flush, and put the written file in place of ``path``."""
        self.stream.flush()
        if self.partial is not None:
            os.fsync(self.stream.fileno())
            self.stream.close()
            os.replace(self.partial, self.path)

    def discard(self) -> None:
        """Drop what was written; ``path`` keeps what it held before."""
        if self.partial is not None:
            self.stream.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.partial)


@contextlib.contextmanager
def atomic_output(path: str, binary: bool = False) -> Iterator[IO]:
    """A stream to ``path``, committed when the block ends normally and discarded otherwise."""
    output = AtomicFile(path, binary)
    try:
        yield output.stream
    except BaseException:
        output.discard()
        raise
    output.commit()
