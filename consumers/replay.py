"""Postmortems: the same engine over replay files or over the topics, from their beginning.

A replay recomputes metrics and alerts from the inputs; given the same events it produces exactly
the alerts the live sidecar produced, field for field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, AsyncIterator, Iterable, Iterator

from trainsentry.consumers.engine import Engine
from trainsentry.consumers.records import DeadLetter, decode_record
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.topic_reader import read_topics
from trainsentry.protocol import (
    AlertEvent, Event, FileReadResult, LogEvent, ScalarEvent, TensorEvent, iter_file, to_wire,
)

INPUT_TYPES = (TensorEvent, ScalarEvent, LogEvent)
MAX_REASONS = 5


@dataclass(frozen=True)
class EventFilter:
    """Which events a replay keeps: some trials, a window of event time (``ts``, inclusive)."""

    trials: frozenset[str] | None = None
    since: float | None = None
    until: float | None = None

    def keeps(self, event: Event) -> bool:
        if self.trials is not None and event.trial not in self.trials:
            return False
        if self.since is not None and event.ts < self.since:
            return False
        return self.until is None or event.ts <= self.until


@dataclass
class ReplaySummary:
    """What a replay read, skipped and found."""

    events: int = 0
    filtered_out: int = 0
    recomputed_skipped: int = 0  # metric and alert events found in the input
    invalid: int = 0
    reasons: list[str] = field(default_factory=list)
    undecodable: list[tuple[str, int]] = field(default_factory=list)  # (file, byte offset)
    alerts: int = 0
    metrics: int = 0

    def note_invalid(self, reason: str) -> None:
        self.invalid += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(reason)


def run_engine(engine: Engine, events: Iterable[Event], keep: EventFilter,
               summary: ReplaySummary) -> Iterator[Event]:
    """Feed the input events that pass ``keep`` to the engine, then end the input; yield what it produces."""
    yield from feed(engine, events, keep, summary)
    yield from _counted(engine.end_of_input(), summary)


def feed(engine: Engine, events: Iterable[Event], keep: EventFilter,
         summary: ReplaySummary) -> Iterator[Event]:
    """Feed the input events that pass ``keep`` to the engine; yield what it produces."""
    process = engine.process
    for event in events:
        if not isinstance(event, INPUT_TYPES):
            summary.recomputed_skipped += 1
            continue
        if not keep.keeps(event):
            summary.filtered_out += 1
            continue
        summary.events += 1
        produced = process(event)
        if produced:  # most events produce nothing
            yield from _counted(produced, summary)


def _counted(outputs: list[Event], summary: ReplaySummary) -> list[Event]:
    for out in outputs:
        if isinstance(out, AlertEvent):
            summary.alerts += 1
        else:
            summary.metrics += 1
    return outputs


def file_events(paths: Iterable[str | Path], summary: ReplaySummary) -> Iterator[Event]:
    """The valid events of replay files, in order; invalid objects counted, bad bytes reported."""
    for path in paths:
        result = FileReadResult()
        with open(path, "rb") as stream:
            yield from iter_file(stream, result)
        summary.invalid += result.invalid
        for reason in result.reasons[: MAX_REASONS - len(summary.reasons)]:
            summary.reasons.append(f"{path}: {reason}")
        if result.undecodable_at is not None:
            summary.undecodable.append((str(path), result.undecodable_at))


async def topic_outputs(settings: KafkaSettings, engine: Engine, keep: EventFilter,
                        summary: ReplaySummary) -> AsyncIterator[list[Event]]:
    """The engine over the tensors and logs topics from their beginning: its outputs, batch by batch.

    Streams: a topic far larger than memory replays in the memory its windows need.
    """
    topics = settings.topics
    keys = None if keep.trials is None else {t.encode() for t in keep.trials}
    async for records in read_topics(settings, [topics.tensors, topics.logs], keys=keys):
        events: list[Event] = []
        for record in records:
            item = decode_record(record)
            if isinstance(item, DeadLetter):
                summary.note_invalid(f"{record.topic}[{record.partition}]@{record.offset}: {item.reason}")
            else:
                events.append(item)
        yield list(feed(engine, events, keep, summary))
    yield _counted(engine.end_of_input(), summary)


def alert_json(alert: AlertEvent) -> str:
    """One alert as one line of JSON with every field; NaN and infinities as strings."""
    return json.dumps(_finite(to_wire(alert)), sort_keys=True, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_alerts(outputs: Iterable[Event], stream: IO[str]) -> int:
    """Write the alerts among ``outputs`` as JSON lines; return how many."""
    count = 0
    for out in outputs:
        if isinstance(out, AlertEvent):
            stream.write(alert_json(out) + "\n")
            count += 1
    return count
