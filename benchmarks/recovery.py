"""Recovery: from a partition's assignment to caught up, after 2,000 and 200,000 events of history.

Per history size, on a fresh deployment of one partition: the history (the workload's scalar
events, 50 trials x 4 series) is published, and a sidecar (``trainsentry run`` in its own process,
default settings) reads it and stops on SIGTERM, writing the partition's snapshot. A tail of 1,000
events is then published, and a sidecar with ``--no-snapshots`` reads and commits it: the tail is
committed and in no snapshot, as after a crash some time after the last snapshot. Then a sidecar
in this process gains the partition, and the figure is the time from the assignment to its state
rebuilt up to the committed offset (``caught_up_at - assigned_at`` of its source; the group join
before it is not included), with the records it read meanwhile: from the newest snapshot (written
back before each round, so that each round finds the same one), and with snapshots off, from the
beginning. The median of a few rounds of each.

    python -m benchmarks.recovery
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from benchmarks import cluster, workload
from benchmarks.processes import Child
from benchmarks.report import Row, Section, number, render_text
from trainsentry.consumers.broker import ensure_topics
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.settings import KafkaSettings, SidecarOptions
from trainsentry.consumers.sidecar import Sidecar
from trainsentry.consumers.snapshots import SnapshotTopic, snapshot_key
from trainsentry.protocol import Topics
from trainsentry.rules.config import load_config

SIZES = (2_000, 200_000)
TRIALS = 50
TAIL = 1_000
ROUNDS = 3
PATIENCE_S = 120.0


@dataclass(frozen=True)
class Recovery:
    seconds: float
    records: int  # read while rebuilding


@dataclass(frozen=True)
class Figures:
    from_snapshot: Recovery
    from_beginning: Recovery
    snapshot_bytes: int


def run(servers: str, sizes: tuple[int, ...] = SIZES, rounds: int = ROUNDS) -> Section:
    section = Section("recovery (assignment to caught up)")
    with tempfile.TemporaryDirectory() as folder:
        config = workload.write_config(Path(folder))
        results = {size: measure(servers, config, size, rounds) for size in sizes}
    for size, figures in results.items():
        fast, slow = figures.from_snapshot, figures.from_beginning
        section.rows.append(Row(
            f"{size:,} events of history, from the newest snapshot",
            f"{number(fast.seconds * 1000)} ms ({fast.records:,} records read)",
            baseline=f"{number(slow.seconds * 1000)} ms from the beginning ({slow.records:,} records read)",
            ratio=f"{number(slow.seconds / fast.seconds)}x"))
    small, large = results[sizes[0]], results[sizes[-1]]
    section.rows.append(Row(
        f"{sizes[-1]:,} vs {sizes[0]:,} events of history",
        f"{number(large.from_snapshot.seconds / small.from_snapshot.seconds)}x the time from a snapshot",
        baseline=f"{number(large.from_beginning.seconds / small.from_beginning.seconds)}x from the beginning"))
    section.notes.append(
        f"a tail of {TAIL:,} events after the newest snapshot; {TRIALS} trials x 4 scalar series in one "
        f"partition, the workload's four rules; the partition's snapshot is "
        + ", ".join(f"{number(f.snapshot_bytes / 1024)} KiB after {s:,} events" for s, f in results.items())
        + f"; median of {rounds} rounds")
    return section


def measure(servers: str, config: Path, size: int, rounds: int) -> Figures:
    topics = cluster.fresh_topics("recovery")
    group = f"bench-recovery-{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_topics(servers, topics.all(), partitions=1))
    try:
        events = list(workload.scalar_events(TRIALS, -(-(size + TAIL) // (TRIALS * 4))))
        history, tail = events[:size], events[size:size + TAIL]
        asyncio.run(cluster.produce(servers, topics.tensors, workload.keyed_records(history)))
        read_and_stop(servers, topics, config, group, size, [])  # writes the snapshot
        snapshot = asyncio.run(newest_snapshot(servers, topics, group))
        asyncio.run(cluster.produce(servers, topics.tensors, workload.keyed_records(tail)))
        read_and_stop(servers, topics, config, group, size + TAIL, ["--no-snapshots"])
        from_snapshot, from_beginning = [], []
        for _ in range(rounds):
            asyncio.run(write_snapshot(servers, topics, group, snapshot))
            from_snapshot.append(asyncio.run(recover(servers, topics, config, group, snapshots=True)))
            from_beginning.append(asyncio.run(recover(servers, topics, config, group, snapshots=False)))
        return Figures(median(from_snapshot), median(from_beginning), len(snapshot))
    finally:
        asyncio.run(cluster.drop(servers, topics))


def median(recoveries: list[Recovery]) -> Recovery:
    middle = statistics.median_low([r.seconds for r in recoveries])
    return next(r for r in recoveries if r.seconds == middle)


def read_and_stop(servers: str, topics: Topics, config: Path, group: str, records: int,
                  extra: list[str]) -> None:
    """``trainsentry run`` until the group has committed ``records`` records, then SIGTERM."""
    command = [sys.executable, "-m", "trainsentry.consumers.cli", "run", "--log-level", "WARNING",
               "--config", str(config), "--bootstrap-servers", servers, "--topic-prefix",
               topics.prefix, "--group-id", group, "--session-timeout-ms",
               str(cluster.SESSION_TIMEOUT_MS), *extra]
    with Child(command) as sidecar:
        deadline = time.monotonic() + PATIENCE_S
        while asyncio.run(committed(servers, topics, group)) != records:
            sidecar.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{records} records not committed within {PATIENCE_S} s:\n"
                                   + sidecar.stderr()[-2000:])
            time.sleep(0.1)


async def committed(servers: str, topics: Topics, group: str) -> int | None:
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.committed(TopicPartition(topics.tensors, 0))
    finally:
        await consumer.stop()


async def newest_snapshot(servers: str, topics: Topics, group: str) -> bytes:
    topic = SnapshotTopic(KafkaSettings(servers, topics=topics))
    await topic.start()
    try:
        value = await topic.newest(snapshot_key(group, 0), 0)
    finally:
        await topic.stop()
    if value is None:
        raise RuntimeError(f"no snapshot of partition 0 of group {group} in {topics.snapshots}")
    return value


async def write_snapshot(servers: str, topics: Topics, group: str, value: bytes) -> None:
    topic = SnapshotTopic(KafkaSettings(servers, topics=topics))
    await topic.start()
    try:
        await topic.write(snapshot_key(group, 0), value, 0)
    finally:
        await topic.stop()


async def recover(servers: str, topics: Topics, config: Path, group: str, snapshots: bool) -> Recovery:
    """A sidecar in this process gains the partition: the time to caught up, and the records read."""
    sidecar = Sidecar(Engine(load_config(config)), cluster.sidecar_settings(servers, topics, group),
                      SidecarOptions(snapshots=snapshots))
    source, stop = sidecar.source, asyncio.Event()
    running = asyncio.create_task(sidecar.run(stop))
    try:
        deadline = time.monotonic() + PATIENCE_S
        while not (source.joined and source.caught_up_at is not None):
            if running.done():
                running.result()
                raise RuntimeError("the sidecar stopped before it caught up")
            if time.monotonic() > deadline:
                raise RuntimeError(f"not caught up within {PATIENCE_S} s")
            await asyncio.sleep(0.002)
        return Recovery(source.caught_up_at - source.assigned_at, source.rebuilt_records)
    finally:
        stop.set()
        await running


if __name__ == "__main__":
    with cluster.cluster() as bootstrap_servers:
        print(render_text([run(bootstrap_servers)]))
