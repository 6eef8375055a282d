"""The one driver of the engine: a source's batches in, the outputs to every sink, then the commit.

For each batch the driver decodes and validates the records (one that is not an event, or whose
key is not its event's trial, becomes a dead letter; so does an event the engine fails to
evaluate), feeds the events to the engine, hands what came out to every sink, waits until each
sink keeps it, and only then advances the source. That order is the whole delivery guarantee, and
it is kept here, once, for the live sidecar, the replays and the tests: a crash anywhere repeats
work on restart but never loses an output, and the repeats carry the same deterministic ids.

A sink that fails retriably (:meth:`Sink.retriable`) gets the same batch again every
``retry_seconds`` until it takes it; if the driver is asked to stop meanwhile, nothing is
committed and the inputs are processed again on restart. Any other failure ends the run. When a
bounded source is exhausted, what the engine produces at the end of input is delivered like a batch.

>>> from trainsentry.consumers.engine import Engine
>>> from trainsentry.consumers.sinks.base import Sink
>>> from trainsentry.consumers.sources.base import Batch, Part, Source
>>> from trainsentry.protocol import ScalarEvent
>>> from trainsentry.rules.config import Config, RuleConfig
>>> class Events(Source):
...     def __init__(self, events): self.batches = [Batch([Part("mem", events=events)])]
...     async def fetch(self): return self.batches.pop() if self.batches else None
>>> class Collected(Sink):
...     def __init__(self): self.alerts = []
...     async def write_batch(self, outputs, dead_letters): self.alerts += outputs
>>> engine = Engine(Config(rules=(RuleConfig.of("LossNotDecreasing", num_steps=2),)))
>>> events = [ScalarEvent("run-1", 100.0 + s, "TRAIN", s, "loss", v, collections=("losses",))
...           for s, v in enumerate([1.0, 0.9, 1.1])]
>>> sink = Collected()
>>> asyncio.run(Driver(engine, Events(events), [sink]).run())
True
>>> [(a.rule, a.step) for a in sink.alerts]
[('LossNotDecreasing', 2)]
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trainsentry.consumers.records import DeadLetter, KafkaRecord, dead_letter, decode_record, describe
from trainsentry.consumers.settings import DELIVERY_RETRY_SECONDS
from trainsentry.consumers.sinks.base import Sink
from trainsentry.consumers.sources.base import Batch, Part, Source
from trainsentry.protocol import Event
from trainsentry.protocol.rendering import brief

if TYPE_CHECKING:
    from trainsentry.consumers.engine import Engine

log = logging.getLogger("trainsentry.driver")


@dataclass(slots=True)
class BatchOutcome:
    """What the engine made of one batch."""

    outputs: list[Event]
    dead_letters: list[DeadLetter]
    trials: dict[Hashable, set[str]]  # per lane, the trials of the events the engine took
    seconds: float  # time spent decoding and evaluating


class DriverListener:
    """What a driver reports to whoever runs it; each method does nothing unless overridden."""

    def started(self) -> None:
        """The sinks and the source are started; batches follow."""

    def evaluated(self, batch: Batch, outcome: BatchOutcome) -> None:
        """The engine took ``batch``; its outputs are about to be delivered."""

    def delivery_failed(self, error: BaseException) -> None:
        """A sink refused a batch (retried if the error is retriable)."""

    def delivered(self, batch: Batch, outcome: BatchOutcome) -> None:
        """Every sink keeps ``outcome``; the source has been told to commit ``batch``."""

    def turned(self) -> None:
        """One turn of the loop is over (after a batch, or a fetch that brought nothing)."""


class Driver:
    """Runs ``engine`` from ``source`` into ``sinks`` until the source ends or ``stop`` is set.

    ``admit``, when given, is asked about every decoded event; the engine sees only those it
    admits (a replay's trial and time filters). ``clock``, when given, is the live source's clock
    (seconds since the epoch): it is read before each batch and after each fetch that brought
    nothing, and given to the engine (:meth:`Engine.advance_clock`), so that the rules that judge
    time (StalledTrainingRule) see it move at least once per poll timeout while nothing arrives.
    Without it (a replay), the engine's clock is the newest event ``ts``.
    """

    def __init__(self, engine: Engine, source: Source, sinks: Sequence[Sink], *,
                 listener: DriverListener | None = None, admit: Callable[[Event], bool] | None = None,
                 retry_seconds: float = DELIVERY_RETRY_SECONDS,
                 clock: Callable[[], float] | None = None) -> None:
        self.engine = engine
        self.source = source
        self.sinks = list(sinks)
        self.listener = listener or DriverListener()
        self.admit = admit
        self.retry_seconds = retry_seconds
        self.clock = clock

    async def run(self, stop: asyncio.Event | None = None) -> bool:
        """``True`` once a bounded source was read to its end and everything delivered;
        ``False`` when ``stop`` ended the run first."""
        stop = stop or asyncio.Event()
        started: list[Sink] = []
        complete = False
        try:
            for sink in self.sinks:
                await sink.start()
                started.append(sink)
            await self.source.start()
            try:
                self.listener.started()
                finished = await self._loop(stop)
            finally:
                await self.source.stop()
            complete = True
            return finished
        finally:
            for sink in reversed(started):
                await sink.stop(complete)

    async def _loop(self, stop: asyncio.Event) -> bool:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                fetch = asyncio.ensure_future(self.source.fetch())
                await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    fetch.cancel()
                    await asyncio.wait({fetch})  # let the source unwind before it is stopped
                    return False
                batch = fetch.result()
                if batch is None:
                    return await self._end_of_input(stop)
                if batch.parts:
                    async with self.source.hold(batch) as held:
                        if held.parts and not await self.step(held, stop):
                            return False
                elif self.clock is not None and not await self._tick(stop):
                    return False
                self.listener.turned()
            return False
        finally:
            stopping.cancel()

    async def step(self, batch: Batch, stop: asyncio.Event) -> bool:
        """Evaluate, deliver, commit one batch; ``False`` if stopped before every sink took it."""
        outcome = self.evaluate(batch)
        self.listener.evaluated(batch, outcome)
        if not await self.deliver(outcome, stop):
            return False  # nothing committed: the inputs are processed again on restart
        await self.source.commit(batch)
        self.listener.delivered(batch, outcome)
        return True

    async def _tick(self, stop: asyncio.Event) -> bool:
        """Nothing arrived: the clock moves all the same; what it causes is delivered."""
        outcome = BatchOutcome(list(self.engine.advance_clock(self.clock())), [], {}, 0.0)
        if not outcome.outputs:
            return True
        self.listener.evaluated(Batch(), outcome)
        if not await self.deliver(outcome, stop):
            return False
        self.listener.delivered(Batch(), outcome)
        return True

    async def _end_of_input(self, stop: asyncio.Event) -> bool:
        outcome = BatchOutcome(self.engine.end_of_input(), [], {}, 0.0)
        self.listener.evaluated(Batch(), outcome)
        if not await self.deliver(outcome, stop):
            return False
        self.listener.delivered(Batch(), outcome)
        return True

    def evaluate(self, batch: Batch) -> BatchOutcome:
        """Decode and evaluate every part of ``batch``; the engine's outputs in order."""
        started = time.perf_counter()
        self.engine.begin_batch()  # the batch's time budget; trials over the byte cap let go
        outputs: list[Event] = []
        if self.clock is not None:  # first: the batch's events arrived by now (arrival time)
            outputs.extend(self.engine.advance_clock(self.clock()))
        dead: list[DeadLetter] = []
        trials: dict[Hashable, set[str]] = {}
        for part in batch.parts:
            seen: set[str] = set()
            if part.records:
                self._evaluate_records(part, outputs, dead, seen)
            if part.events:
                self._evaluate_events(part, outputs, dead, seen)
            trials[part.lane] = seen
        return BatchOutcome(outputs, dead, trials, time.perf_counter() - started)

    def _evaluate_records(self, part: Part, outputs: list[Event], dead: list[DeadLetter],
                          seen: set[str]) -> None:
        # The per-record hot path: names bound once, no call that is not needed.
        process, admit, add = self.engine.process, self.admit, seen.add
        rebuild_below = part.rebuild_below
        for record in part.records:
            item = decode_record(record)
            replaying = rebuild_below is not None and record.offset < rebuild_below
            if isinstance(item, DeadLetter):
                if not replaying:
                    dead.append(item)
                continue
            if admit is not None and not admit(item):
                continue
            try:
                produced = process(item)
            except Exception as exc:  # a rule's bug must not stop every trial: set it aside
                if not replaying:
                    dead.append(_unevaluated(record, exc))
                continue
            add(item.trial)
            if produced and not replaying:
                outputs.extend(produced)

    def _evaluate_events(self, part: Part, outputs: list[Event], dead: list[DeadLetter],
                         seen: set[str]) -> None:
        process, admit, add = self.engine.process, self.admit, seen.add
        for event in part.events:
            if admit is not None and not admit(event):
                continue
            try:
                produced = process(event)
            except Exception as exc:
                dead.append(_unevaluated_event(part, event, exc))
                continue
            add(event.trial)
            if produced:
                outputs.extend(produced)

    async def deliver(self, outcome: BatchOutcome, stop: asyncio.Event) -> bool:
        """Give ``outcome`` to every sink, retrying those that fail retriably; ``False`` when
        asked to stop before every sink took it."""
        outputs, dead = outcome.outputs, outcome.dead_letters
        if not outputs and not dead:
            return True
        pending = self.sinks
        while True:
            failures = await _write(pending, outputs, dead)
            if not failures:
                return True
            for sink, error in failures:
                self.listener.delivery_failed(error)
                if not sink.retriable(error):  # e.g. not authorised: retrying cannot help
                    raise error
            error = failures[0][1]
            if stop.is_set():
                log.warning("stopping with %d output(s) undelivered (%s); their inputs stay "
                            "uncommitted and are processed again on restart", len(outputs) + len(dead),
                            error)
                return False
            log.warning("publishing %d output(s) failed (%s); retrying in %.1fs (offsets stay "
                        "uncommitted)", len(outputs) + len(dead), error, self.retry_seconds)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.retry_seconds)
            pending = [sink for sink, _ in failures]


async def _write(sinks: Sequence[Sink], outputs: list[Event],
                 dead: list[DeadLetter]) -> list[tuple[Sink, Exception]]:
    """Write to every sink at once; the sinks that failed, with their errors."""
    if len(sinks) == 1:  # the usual case, without a task per sink
        try:
            await sinks[0].write_batch(outputs, dead)
        except Exception as exc:
            return [(sinks[0], exc)]
        return []
    results = await asyncio.gather(*(sink.write_batch(outputs, dead) for sink in sinks),
                                   return_exceptions=True)
    failures = []
    for sink, result in zip(sinks, results, strict=True):
        if isinstance(result, Exception):
            failures.append((sink, result))
        elif isinstance(result, BaseException):  # cancelled: not a sink's failure
            raise result
    return failures


def _unevaluated(record: KafkaRecord, exc: Exception) -> DeadLetter:
    # describe(): the error's text is bounded, whatever value a rule put in its message.
    log.error("evaluating %s[%d]@%d failed: %s", record.topic, record.partition, record.offset,
              describe(exc))
    return dead_letter(record, f"evaluation failed: {describe(exc)}")


def _unevaluated_event(part: Part, event: Event, exc: Exception) -> DeadLetter:
    """The dead letter of an event that came decoded (from a file): no bytes, no offset."""
    log.error("evaluating an event of %s (trial %s) failed: %s", part.lane, brief(event.trial),
              describe(exc))
    return DeadLetter(str(part.lane), 0, -1, event.trial.encode(), None,
                      f"evaluation failed: {describe(exc)}", int(event.ts * 1000))
