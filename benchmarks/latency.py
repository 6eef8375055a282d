"""Alert latency: from the producer's send of the step that trips a rule to the alert at a subscriber.

An open-loop producer offers scalar losses at a fixed rate over 50 trials. Every 50th step of a
trial is a spike that LossNotDecreasing (``num_steps`` 10) turns into an alert; the spike's ``ts``
is its send time (``time.time()``), and the alert carries it back as ``event_ts``. A subscriber on
the alerts topic computes ``arrival - event_ts``.

Beside it, the same load through a minimal relay (``benchmarks.relay``) on the same broker with the
same fetch settings, whose subscriber computes ``arrival - ts`` for the same spike events: two
fetches and one produce, the floor any sidecar has. The relay that republishes only the spikes
(marked by a record header, so it decodes nothing) leaves its output as small as the sidecar's; it
and the sidecar take turns over several short rounds, and the samples of the rounds are pooled. A
relay that republishes every event runs once, for reference. The sidecar runs as ``trainsentry
run`` in its own process, each relay in its own process; the producer and the subscriber share
this one. (Run side by side on these 2 cores, the systems slow each other down more than the
machine's drift does.)
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks import cluster, processes, workload
from benchmarks.relay import MARK
from benchmarks.report import Row, Section, Target, number
from benchmarks.stats import percentile
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.protocol import ScalarEvent, Topics, encode

TRIALS = 50
SPIKE_EVERY = 50           # steps between two spikes of one trial's loss
PRODUCER_LINGER_MS = 5
SETTLE_SECONDS = 2.0       # after the first output: start-up backlog drained before measuring
DRAIN_SECONDS = 10.0       # longest wait for the outputs of the last events sent
TARGET_ADDED_P99_MS = 10.0

SIDECAR, FLOOR, RELAY_ALL = "sidecar", "relay of the spikes", "relay of every event"


def trips(step: int) -> bool:
    return step > 0 and step % SPIKE_EVERY == 0


def loss_at(step: int) -> float:
    """Falls steadily, except for a spike every :data:`SPIKE_EVERY` steps (evaluated every 10)."""
    return 10.0 if trips(step) else 1.0 / (1.0 + 0.01 * step)


async def offer_load(producer: AIOKafkaProducer, topic: str, rate: float, stop: asyncio.Event) -> list[float]:
    """Send at ``rate`` events/s until ``stop``; the send times of the events that trip the rule."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent = 0
    tripping: list[float] = []
    while not stop.is_set():
        due = int((loop.time() - started) * rate) + 1
        while sent < due:
            trial, step = workload.trial_name(sent % TRIALS), sent // TRIALS
            ts = time.time()
            event = ScalarEvent(trial=trial, ts=ts, mode="TRAIN", step=step, name="loss",
                                value=loss_at(step), collections=("losses",))
            spike = trips(step)
            await producer.send(topic, encode(event), key=trial.encode(), headers=[MARK] if spike else None)
            if spike:
                tripping.append(ts)
            sent += 1
        await asyncio.sleep(0.001)
    return tripping


def alert_sent_at(obj: dict) -> float | None:
    """The send time an alert of the spike carries back (``event_ts``)."""
    if obj.get("type") == "alert" and obj.get("rule_type") == "LossNotDecreasing":
        return obj["event_ts"]
    return None


def relayed_sent_at(obj: dict) -> float | None:
    """The send time of a relayed spike event (its own ``ts``)."""
    if obj.get("type") == "scalar" and trips(obj["step"]):
        return obj["ts"]
    return None


@dataclass
class Subscriber:
    """Reads a topic from its beginning, noting (send time, latency) for each output of a spike."""

    settings: KafkaSettings
    topic: str
    sent_at: Callable[[dict], float | None]
    samples: list[tuple[float, float]] = field(default_factory=list)
    first_output: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.settings.bootstrap_servers,
                                    group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", **cluster.fetch_options(self.settings))
        await consumer.start()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=100)
                arrived = time.time()
                for records in batch.values():
                    for record in records:
                        sent = self.sent_at(msgpack.unpackb(record.value, raw=False))
                        if sent is not None:
                            self.samples.append((sent, arrived - sent))
                            self.first_output.set()
        finally:
            await consumer.stop()


@dataclass(frozen=True)
class Latencies:
    system: str
    rate: int
    seconds: list[float]
    expected: int
    round_p99s: tuple[float, ...] = ()

    @classmethod
    def pooled(cls, rounds: list[Latencies]) -> Latencies:
        first = rounds[0]
        return cls(first.system, first.rate, [s for r in rounds for s in r.seconds],
                   sum(r.expected for r in rounds), tuple(r.p(99) for r in rounds))

    def p(self, q: float) -> float:
        return percentile(self.seconds, q) * 1000.0

    @property
    def missing(self) -> int:
        return self.expected - len(self.seconds)


@dataclass
class Pipeline:
    """One system under test: its process and the subscriber reading what it publishes."""

    system: str
    child: processes.Child
    subscriber: Subscriber


def pipeline(bootstrap_servers: str, system: str, topics: Topics, config: Path) -> Pipeline:
    settings = cluster.sidecar_settings(bootstrap_servers, topics)  # a group of its own
    if system == SIDECAR:
        child = processes.sidecar(bootstrap_servers, topics, config, settings.group_id,
                                  settings.fetch_max_wait_ms)
        return Pipeline(system, child, Subscriber(settings, topics.alerts, alert_sent_at))
    target = f"{topics.prefix}.relayed-{'spikes' if system == FLOOR else 'all'}"
    child = processes.relay(bootstrap_servers, topics.tensors, target, settings.group_id,
                            settings.fetch_max_wait_ms, marked_only=system == FLOOR)
    return Pipeline(system, child, Subscriber(settings, target, relayed_sent_at))


async def measure(bootstrap_servers: str, systems: tuple[str, ...], rate: int, duration: float,
                  config: Path) -> dict[str, Latencies]:
    """Offer ``rate`` events/s to ``systems`` at once (each consumes the input in its own group)."""
    topics = cluster.fresh_topics("latency")
    pipelines = [pipeline(bootstrap_servers, system, topics, config) for system in systems]
    outputs = [p.subscriber.topic for p in pipelines if p.subscriber.topic != topics.alerts]
    await cluster.create(bootstrap_servers, topics, *outputs)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks=1, linger_ms=PRODUCER_LINGER_MS)
    stop_sending, stop_reading = asyncio.Event(), asyncio.Event()
    try:
        with contextlib.ExitStack() as running:
            for p in pipelines:
                running.enter_context(p.child)
            await producer.start()
            reading = [asyncio.create_task(p.subscriber.run(stop_reading)) for p in pipelines]
            sending = asyncio.create_task(offer_load(producer, topics.tensors, rate, stop_sending))
            for p in pipelines:
                await _first_output(p)
            await asyncio.sleep(SETTLE_SECONDS)
            begin = time.time()
            await asyncio.sleep(duration)
            end = time.time()
            stop_sending.set()
            expected = sum(1 for ts in await sending if begin <= ts < end)
            deadline = time.monotonic() + DRAIN_SECONDS
            while (any(_in_window(p.subscriber, begin, end) < expected for p in pipelines)
                   and time.monotonic() < deadline):
                await asyncio.sleep(0.1)
            stop_reading.set()
            await asyncio.gather(*reading)
            for p in pipelines:
                p.child.check_alive()
    finally:
        await producer.stop()
        await cluster.drop(bootstrap_servers, topics, *outputs)
    return {p.system: Latencies(p.system, rate, [latency for sent, latency in p.subscriber.samples
                                                 if begin <= sent < end], expected)
            for p in pipelines}


async def _first_output(p: Pipeline, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not p.subscriber.first_output.is_set():
        p.child.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{p.system}: no output within {timeout:.0f}s:\n{p.child.stderr()[-2000:]}")
        await asyncio.sleep(0.1)


def _in_window(subscriber: Subscriber, begin: float, end: float) -> int:
    return sum(1 for sent, _ in subscriber.samples if begin <= sent < end)


def section(results: list[dict[str, Latencies]]) -> Section:
    out = Section("Alert latency")
    for by_system in results:
        sidecar, floor = by_system[SIDECAR], by_system[FLOOR]
        added_p99 = sidecar.p(99) - floor.p(99)
        target = None
        if sidecar.rate >= 10_000:
            target = Target(f"p99 <= relay p99 + {TARGET_ADDED_P99_MS:g} ms", added_p99 <= TARGET_ADDED_P99_MS)
        out.rows.append(Row(
            f"p50 / p99 at {sidecar.rate:,} events/s", _p50_p99(sidecar),
            f"relay {_p50_p99(floor)}", f"{sidecar.p(50) - floor.p(50):+.1f} / {added_p99:+.1f} ms", target))
    for by_system in results:
        relay_all = by_system[RELAY_ALL]
        out.rows.append(Row(f"{RELAY_ALL} (reference), p50 / p99 at {relay_all.rate:,} events/s",
                            _p50_p99(relay_all)))
    for by_system in results:
        for result in by_system.values():
            out.notes.append(
                f"{result.system} at {result.rate:,} events/s: {len(result.seconds):,} samples "
                f"({result.missing} missing), p50 {number(result.p(50))} ms, p90 "
                f"{number(result.p(90))} ms, p99 {number(result.p(99))} ms (per round: "
                + ", ".join(number(p) for p in result.round_p99s) + "), max "
                f"{number(max(result.seconds, default=float('nan')) * 1000)} ms")
    out.notes.append(
        f"Open-loop producer over {TRIALS} trials (aiokafka, linger_ms={PRODUCER_LINGER_MS}); a spike "
        f"every {SPIKE_EVERY} steps of a trial trips LossNotDecreasing; fetch_max_wait_ms "
        f"{KafkaSettings.fetch_max_wait_ms} (the sidecar's default) for the sidecar, the relays and the "
        "subscribers (Tansu answers a waiting fetch only at fetch_max_wait_ms, so each hop costs up "
        "to that). The relay column is the relay of the spikes: it consumes every event and "
        "republishes as many records as the sidecar publishes alerts. The relay and the sidecar "
        "take turns, round by round; each round's p99 is in parentheses.")
    return out


def _p50_p99(result: Latencies) -> str:
    return f"{number(result.p(50))} / {number(result.p(99))} ms"


def run(bootstrap_servers: str, loads: list[tuple[int, float, int]]) -> Section:
    """``loads``: (events/s, measured seconds, rounds).

    Each round measures the relay of the spikes and the sidecar one after the other, in turns, so
    neither is always first; the relay of every event runs once after them. The samples of all
    rounds are pooled per system.
    """
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        config = workload.write_config(Path(tmp))
        for rate, duration, rounds in loads:
            turns = [(FLOOR, SIDECAR) if r % 2 == 0 else (SIDECAR, FLOOR) for r in range(rounds)]
            runs = [asyncio.run(measure(bootstrap_servers, (system,), rate, duration, config))
                    for turn in turns for system in turn]
            runs.append(asyncio.run(measure(bootstrap_servers, (RELAY_ALL,), rate, duration, config)))
            results.append({system: Latencies.pooled([r[system] for r in runs if system in r])
                            for system in (SIDECAR, FLOOR, RELAY_ALL)})
    return section(results)
