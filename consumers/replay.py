"""Postmortems: the engine over replay files or over the topics from their beginning, by the driver.

A replay recomputes metrics and alerts from the inputs; given the same events it produces exactly
the alerts the live sidecar produced, field for field: it is the same driver and the same engine,
only the source (:mod:`.sources.replay_file`, :mod:`.sources.topic_reader`) and the sinks differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from trainsentry.consumers.driver import BatchOutcome, Driver, DriverListener
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sinks.base import Sink
from trainsentry.consumers.sources.base import Batch
from trainsentry.consumers.sources.replay_file import ReplayFileSource
from trainsentry.protocol import AlertEvent, Event, FileReadResult, LogEvent, ScalarEvent, TensorEvent

if TYPE_CHECKING:
    from trainsentry.consumers.engine import Engine
    from trainsentry.consumers.progress import CommandProgress

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
class ReplaySummary(DriverListener):
    """What a replay read, skipped and found (counted as the driver reports it)."""

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

    def note_files(self, results: Iterable[tuple[Path, FileReadResult]]) -> None:
        """Count what the replay files held besides their events."""
        for path, result in results:
            self.invalid += result.invalid
            for reason in result.reasons[: max(0, MAX_REASONS - len(self.reasons))]:
                self.reasons.append(f"{path}: {reason}")
            if result.undecodable_at is not None:
                self.undecodable.append((str(path), result.undecodable_at))

    def admission(self, keep: EventFilter) -> Callable[[Event], bool]:
        """The driver's ``admit``: input events that ``keep`` keeps, the others counted."""
        def admit(event: Event) -> bool:
            if not isinstance(event, INPUT_TYPES):
                self.recomputed_skipped += 1
                return False
            if not keep.keeps(event):
                self.filtered_out += 1
                return False
            self.events += 1
            return True
        return admit

    def delivered(self, batch: Batch, outcome: BatchOutcome) -> None:
        for out in outcome.outputs:
            if isinstance(out, AlertEvent):
                self.alerts += 1
            else:
                self.metrics += 1
        for letter in outcome.dead_letters:
            where = letter.topic if letter.offset < 0 else (
                f"{letter.topic}[{letter.partition}]@{letter.offset}")
            self.note_invalid(f"{where}: {letter.reason}")


async def replay_files(engine: Engine, paths: Sequence[str | Path], sinks: Sequence[Sink],
                       keep: EventFilter, summary: ReplaySummary,
                       progress: CommandProgress | None = None) -> None:
    """The engine over replay files, in order; their invalid contents counted in ``summary``;
    bytes read shown by ``progress``."""
    source = ReplayFileSource(paths)
    if progress is not None:
        progress.follow_position(source.position)
    try:
        await Driver(engine, source, sinks, listener=summary, admit=summary.admission(keep)).run()
    finally:
        summary.note_files(source.results)


async def replay_topics(engine: Engine, settings: KafkaSettings, sinks: Sequence[Sink],
                        keep: EventFilter, summary: ReplaySummary,
                        progress: CommandProgress | None = None) -> None:
    """The engine over the tensors and logs topics from their beginning to their current end.

    Streams: a topic far larger than memory replays in the memory its windows need. Offsets read
    shown by ``progress``.
    """
    from trainsentry.consumers.sources.topic_reader import TopicSource

    keys = None if keep.trials is None else {t.encode() for t in keep.trials}
    source = TopicSource(settings, [settings.topics.tensors, settings.topics.logs], keys=keys)
    if progress is not None:
        progress.follow_position(source.position)
    await Driver(engine, source, sinks, listener=summary, admit=summary.admission(keep)).run()
