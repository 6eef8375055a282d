"""Alerts on standard output as they come: one readable line each, or one JSON object each.

``tail`` prints with it, and ``replay --output -`` writes its JSON lines through it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO

from trainsentry.consumers.alert_text import alert_json, alert_line
from trainsentry.consumers.records import DeadLetter
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sinks.base import Sink
from trainsentry.protocol import AlertEvent, Event

FORMATS = ("text", "json")


class ConsoleSink(Sink):
    """Prints each alert as a line (``text``) or a JSON object (``json``) and flushes."""

    def __init__(self, as_json: bool = False, stream: IO[str] | None = None) -> None:
        self.format = alert_json if as_json else alert_line
        self.stream = stream

    @classmethod
    def from_target(cls, target: str, settings: KafkaSettings) -> ConsoleSink:
        """``console`` or ``console:text``: readable lines; ``console:json``: JSON lines."""
        if target not in ("", *FORMATS):
            raise ValueError(f"console prints {' or '.join(FORMATS)}, not {target!r}")
        return cls(as_json=target == "json")

    def write_alert(self, alert: AlertEvent) -> None:
        stream = self.stream or sys.stdout  # looked up late: tests and callers may swap stdout
        stream.write(self.format(alert) + "\n")
        stream.flush()

    async def write_batch(self, outputs: Sequence[Event], dead_letters: Sequence[DeadLetter]) -> None:
        for out in outputs:
            if isinstance(out, AlertEvent):
                self.write_alert(out)
