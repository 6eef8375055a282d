"""Sidecar throughput beside the raw consume rate of the same topic, in alternating rounds.

Each round reads one pre-filled topic three times, back to back: a bare aiokafka ``getmany`` loop
that decodes nothing, the same loop with ``msgpack.unpackb`` per record, and the real sidecar (the
:class:`Sidecar` class over its consumer group, engine, sink and commits). Same broker, same fetch
settings, same ``max_records``. The machine's speed drifts over minutes, so each round's ratio is
taken within the round and the median ratio is reported.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import msgpack
from aiokafka import AIOKafkaConsumer

from benchmarks import cluster, workload
from benchmarks.report import Row, Section, Target, number
from benchmarks.stats import BatchClock, Paired, median
from trainsentry.consumers.driver import BatchOutcome
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sidecar import Sidecar
from trainsentry.consumers.sources import Batch
from trainsentry.protocol import Event
from trainsentry.rules.config import Config, load_config


@dataclass(frozen=True)
class Stream:
    """One throughput workload: what is published, how its rate is reported, its target ratio."""

    label: str
    events: Callable[[], Iterable[Event]]
    count: int
    unit: str
    unit_scale: float  # figure = events/s * unit_scale
    target_ratio: float


def scalar_stream(trials: int, steps: int) -> Stream:
    return Stream("scalar events", lambda: workload.scalar_events(trials, steps),
                  trials * steps * len(workload.SCALAR_SERIES), "events/s", 1.0, 0.7)


def tensor_stream(trials: int, layers: int, steps: int) -> Stream:
    return Stream("64x64 float32 weights", lambda: workload.weight_events(trials, layers, steps),
                  trials * layers * steps, "MB/s", workload.WEIGHT_BYTES / 1e6, 0.9)


async def raw_consume(settings: KafkaSettings, topic: str, expected: int,
                      decode: Callable[[bytes], object] | None = None) -> float:
    """Records/s of a hand-written ``getmany`` loop (no group), optionally decoding each value."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.bootstrap_servers, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                **cluster.fetch_options(settings))
    await consumer.start()
    clock = BatchClock(expected)
    try:
        while not clock.done:
            batch = await consumer.getmany(timeout_ms=200, max_records=settings.max_batch_records)
            if not batch:
                continue
            count = 0
            for records in batch.values():
                count += len(records)
                if decode is not None:
                    for record in records:
                        decode(record.value)
            clock.batch_done(count)
    finally:
        await consumer.stop()
    return clock.rate


class TimedSidecar(Sidecar):
    """The live sidecar, timing each batch once it is processed, delivered and committed."""

    def __init__(self, engine: Engine, settings: KafkaSettings, expected: int) -> None:
        super().__init__(engine, settings)
        self.clock = BatchClock(expected)
        self._stop: asyncio.Event | None = None

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        await super().run(stop)

    def delivered(self, batch: Batch, outcome: BatchOutcome) -> None:
        super().delivered(batch, outcome)
        self.clock.batch_done(batch.size)
        if self.clock.done:
            self._stop.set()


async def sidecar_consume(settings: KafkaSettings, config: Config, expected: int) -> float:
    """Records/s of the live sidecar reading the topic from its beginning in a fresh group."""
    sidecar = TimedSidecar(Engine(config), settings, expected)
    await asyncio.wait_for(sidecar.run(asyncio.Event()), timeout=300)
    return sidecar.clock.rate


async def measure(bootstrap_servers: str, stream: Stream, rounds: int) -> tuple[Paired, Paired]:
    """(raw vs sidecar, raw vs raw+msgpack) over ``rounds`` alternating rounds on one topic."""
    topics = cluster.fresh_topics("throughput")
    await cluster.create(bootstrap_servers, topics)
    sidecar_vs_raw, decode_vs_raw = Paired(), Paired()
    try:
        published = await cluster.produce(bootstrap_servers, topics.tensors,
                                          workload.keyed_records(stream.events()))
        assert published == stream.count, (published, stream.count)
        with tempfile.TemporaryDirectory() as tmp:
            config = load_config(workload.write_config(Path(tmp)))
            for _ in range(rounds):
                settings = cluster.sidecar_settings(bootstrap_servers, topics)
                raw = await raw_consume(settings, topics.tensors, stream.count)
                decoded = await raw_consume(settings, topics.tensors, stream.count, _unpack)
                sidecar = await sidecar_consume(settings, config, stream.count)
                sidecar_vs_raw.add(raw, sidecar)
                decode_vs_raw.add(raw, decoded)
    finally:
        await cluster.drop(bootstrap_servers, topics)
    return sidecar_vs_raw, decode_vs_raw


def _unpack(value: bytes) -> object:
    return msgpack.unpackb(value, raw=False)


def section(results: list[tuple[Stream, Paired, Paired]], rounds: int) -> Section:
    out = Section("Sidecar throughput")
    for stream, sidecar, decoded in results:
        scale = stream.unit_scale
        ratio = sidecar.median_ratio
        out.rows.append(Row(
            f"{stream.label}, all 4 rules + 4 metric definitions",
            f"{number(median(sidecar.measured) * scale)} {stream.unit}",
            f"raw getmany {number(median(sidecar.baseline) * scale)} {stream.unit}",
            f"{ratio:.2f}",
            Target(f"ratio >= {stream.target_ratio}", ratio >= stream.target_ratio)))
        out.rows.append(Row(
            f"{stream.label}, raw getmany + msgpack.unpackb (reference)",
            f"{number(median(decoded.measured) * scale)} {stream.unit}",
            "raw getmany", f"{decoded.median_ratio:.2f}"))
        out.notes.append(
            f"{stream.label}: {stream.count:,} events; per-round sidecar/raw ratios "
            + ", ".join(f"{r:.2f}" for r in sidecar.ratios)
            + "; raw " + ", ".join(number(b * scale) for b in sidecar.baseline)
            + f" {stream.unit}; sidecar " + ", ".join(number(m * scale) for m in sidecar.measured)
            + f" {stream.unit}")
    out.notes.append(
        f"{rounds} rounds of (raw, raw + msgpack, sidecar) on one topic of 4 partitions; rates "
        "count from the end of the first batch to the end of the last (the sidecar's batch ends "
        "after its outputs are acknowledged and its offsets committed).")
    return out


def run(bootstrap_servers: str, scalars: Stream, tensors: Stream, rounds: int) -> Section:
    results = []
    for stream in (scalars, tensors):
        sidecar, decoded = asyncio.run(measure(bootstrap_servers, stream, rounds))
        results.append((stream, sidecar, decoded))
    return section(results, rounds)
