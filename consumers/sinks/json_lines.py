"""Alerts to a file of JSON lines, one object per alert with every field (``replay --output``).

As ``replay --output FILE`` it replaces ``FILE`` once the run is complete (an interrupted replay
leaves the previous file); as ``--sink jsonl:FILE`` it appends, each batch flushed to disk before
the driver goes on.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import IO

from trainsentry.consumers.alert_text import alert_json
from trainsentry.consumers.output_file import AtomicFile, OutputFileError
from trainsentry.consumers.records import DeadLetter
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sinks.base import Sink
from trainsentry.protocol import AlertEvent, Event


class JsonLinesSink(Sink):
    """Writes the alerts among the outputs to ``path`` (``-``: standard output).

    The file is opened when the sink is made, so a path that cannot be written is refused
    (:class:`OutputFileError`) before any input is read.
    """

    def __init__(self, path: str, append: bool = False) -> None:
        self.path = path
        self._file: AtomicFile | None = None
        self._appended: IO[str] | None = None
        if append:
            try:
                self._appended = open(path, "a", encoding="utf-8")  # noqa: SIM115 - until stop()
            except OSError as exc:
                raise OutputFileError(f"cannot write {path}: {exc.strerror or exc}") from None
        else:
            self._file = AtomicFile(path)
        self.stream: IO[str] = self._appended or self._file.stream

    @classmethod
    def from_target(cls, target: str, settings: KafkaSettings) -> JsonLinesSink:
        """``jsonl:FILE``: append the alerts to ``FILE``."""
        if not target:
            raise OutputFileError("jsonl needs a file: jsonl:FILE")
        return cls(target, append=True)

    async def stop(self, complete: bool) -> None:
        if self._appended is not None:
            self._appended.close()
        elif complete:
            self._file.commit()
        else:
            self._file.discard()

    async def write_batch(self, outputs: Sequence[Event], dead_letters: Sequence[DeadLetter]) -> None:
        lines = [alert_json(out) for out in outputs if isinstance(out, AlertEvent)]
        if not lines:
            return
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        if self._appended is not None:
            os.fsync(self._appended.fileno())
