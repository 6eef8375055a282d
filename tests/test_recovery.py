"""Recovery bounded by the snapshot interval: a sidecar gaining a partition restores its newest
snapshot and reads only the records after it, and goes on with the alerts, ids included, of an
engine that read everything; a snapshot it cannot use sends it back to the beginning, said once.

Records read while rebuilding are counted from the sidecar's own log lines ("N records read from
offset X") and compared with the offsets of the newest snapshots, read from the snapshots topic.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter

import msgpack
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from tests.consumers.test_probes import wait_for
from tests.sidecar_harness import SidecarProcess, publish, read_alerts
from tests.streams import interleave, losses, replay_alerts, weights, write_config
from trainsentry.consumers.broker import free_port
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.snapshots import snapshot_key
from trainsentry.consumers.sources.topic_reader import read_topics
from trainsentry.protocol import Topics
from trainsentry.rules.config import Config, RuleConfig

PARTITIONS = 4
NEVER = ["--snapshot-interval-records", "100000000", "--snapshot-interval-seconds", "100000"]
REBUILT = re.compile(r"(\S+)\[(\d+)\]: state rebuilt up to offset (\d+) \((\d+) records read from offset (\d+)\)")
RESTORED = re.compile(r"partition (\d+): \d+ trial\(s\) restored from the snapshot of ")
UNUSABLE = re.compile(r"partition (\d+): its newest snapshot cannot be used \((.*)\); rebuilding")


def trials_on_every_partition(per_partition: int = 1) -> list[str]:
    """Trial ids that the default partitioner spreads over every partition."""
    choose, found = DefaultPartitioner(), {p: [] for p in range(PARTITIONS)}
    index = 0
    while any(len(names) < per_partition for names in found.values()):
        name = f"trial-{index}"
        found[choose(name.encode(), list(range(PARTITIONS)), list(range(PARTITIONS)))].append(name)
        index += 1
    return [name for names in found.values() for name in names[:per_partition]]


def training(trials: list[str], steps: int, seed: int) -> list:
    """Losses that stall now and then and weights that freeze, interleaved across trials."""
    rng = random.Random(seed)
    streams = []
    for trial in trials:
        values, value = [], 1.0
        for _ in range(steps):
            value *= rng.choice((0.97, 1.0, 1.01))
            values.append(value)
        streams.append(losses(trial, values, every=1))
        streams.append(weights(trial, steps=steps // 4, frozen_after=steps // 8))
    return interleave(*streams)


def before(events: list, step: int, since: int = 0) -> list:
    return [e for e in events if since <= e.step < step]


async def _ends(servers: str, topics: Topics) -> dict[TopicPartition, int]:
    positions: dict = {}
    async for _ in read_topics(KafkaSettings(servers), [topics.tensors, topics.logs], positions=positions):
        pass
    return {tp: high for tp, (_next, high) in positions.items() if high}


async def _committed(servers: str, group: str, tps) -> dict[TopicPartition, int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {tp: await consumer.committed(tp) for tp in tps}
    finally:
        await consumer.stop()


def wait_until_committed(servers: str, topics: Topics, group: str, sidecar: SidecarProcess) -> dict:
    """Wait until ``group`` has committed every record of both input topics; the offsets."""
    ends = asyncio.run(_ends(servers, topics))
    deadline = time.monotonic() + 60
    while asyncio.run(_committed(servers, group, ends)) != ends:
        assert sidecar.process.poll() is None, sidecar.stderr
        assert time.monotonic() < deadline, sidecar.stderr
        time.sleep(0.2)
    return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}


async def _newest_snapshots(servers: str, topics: Topics, group: str) -> dict[int, dict]:
    newest: dict[bytes, bytes] = {}
    async for records in read_topics(KafkaSettings(servers), [topics.snapshots]):
        newest.update((r.key, r.value) for r in records)
    return {p: msgpack.unpackb(newest[snapshot_key(group, p)]) for p in range(PARTITIONS)
            if snapshot_key(group, p) in newest}


async def _write(servers: str, topic: str, records: list[tuple[bytes, bytes, int]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers)
    await producer.start()
    try:
        for key, value, partition in records:
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


def ready_sidecar(servers: str, topics: Topics, config, group: str, *extra: str) -> tuple[SidecarProcess, int]:
    port = free_port()
    sidecar = SidecarProcess(servers, topics, config, group_id=group,
                             extra_args=[*extra, "--metrics-port", str(port)]).start()
    wait_for(port, "/readyz", 200, lambda: None if sidecar.process.poll() is None else pytest.fail(sidecar.stderr))
    return sidecar, port


def rebuilt(stderr: str) -> list[tuple[str, int, int, int, int]]:
    """(topic, partition, committed offset, records read, first offset read) of each rebuild."""
    return [(t, int(p), int(c), int(n), int(f)) for t, p, c, n, f in REBUILT.findall(stderr)]


def test_a_restart_reads_only_the_records_after_the_newest_snapshot(bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    events = training(trials_on_every_partition(2), steps=1800, seed=5)
    history, tail, later = before(events, 1500), before(events, 1600, 1500), before(events, 1800, 1600)
    expected = replay_alerts(config, events)
    assert len(history) > 10 * len(tail) and any(a.step >= 1600 for a in expected.values())

    publish(bootstrap_servers, topics, history)
    first, _ = ready_sidecar(bootstrap_servers, topics, config, "long")
    history_end = wait_until_committed(bootstrap_servers, topics, "long", first)
    assert first.stop() == 0, first.stderr  # writes the snapshots of the whole history
    snapshots = asyncio.run(_newest_snapshots(bootstrap_servers, topics, "long"))
    assert sorted(snapshots) == list(range(PARTITIONS))
    for partition, snapshot in snapshots.items():
        for topic, offset in snapshot["offsets"].items():
            assert offset == history_end.get((topic, partition), 0)

    publish(bootstrap_servers, topics, tail)
    second, _ = ready_sidecar(bootstrap_servers, topics, config, "long", *NEVER)
    wait_until_committed(bootstrap_servers, topics, "long", second)
    second.kill()  # the tail is committed, and in no snapshot

    third, _ = ready_sidecar(bootstrap_servers, topics, config, "long")
    publish(bootstrap_servers, topics, later)
    alerts = read_alerts(bootstrap_servers, topics, count=len(expected), timeout=60)
    assert third.stop() == 0, third.stderr
    assert {a.id: a for a in alerts} == expected

    assert sorted(int(p) for p in RESTORED.findall(third.stderr)) == list(range(PARTITIONS))
    rebuilds = rebuilt(third.stderr)
    assert rebuilds, third.stderr
    for topic, partition, _committed_offset, read, start in rebuilds:
        assert start == snapshots[partition]["offsets"][topic]  # from the snapshot, not offset 0
        assert read == _committed_offset - start
    assert sum(read for *_, read, _start in rebuilds) == len(tail)  # the tail, and nothing before it


def test_a_snapshot_that_cannot_be_used_sends_its_partition_back_to_the_beginning_said_once(
        bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    events = training(trials_on_every_partition(), steps=400, seed=9)
    history, later = before(events, 300), before(events, 400, 300)
    expected = replay_alerts(config, events)
    publish(bootstrap_servers, topics, history)
    first, _ = ready_sidecar(bootstrap_servers, topics, config, "spoilt")
    history_end = wait_until_committed(bootstrap_servers, topics, "spoilt", first)
    assert first.stop() == 0, first.stderr
    good = asyncio.run(_newest_snapshots(bootstrap_servers, topics, "spoilt"))

    def spoilt(partition: int, **changes: object) -> tuple[bytes, bytes, int]:
        value = {**good[partition], **changes}
        return snapshot_key("spoilt", partition), msgpack.packb(value, use_bin_type=True), partition

    other_config = Engine(Config(rules=(RuleConfig.of("LossNotDecreasing", num_steps=3),))).snapshot([])
    asyncio.run(_write(bootstrap_servers, topics.snapshots, [
        (snapshot_key("spoilt", 0), b"\x00 not a snapshot", 0),
        spoilt(1, v=0),
        spoilt(2, state=other_config),
        spoilt(3, committed={topic: offset + 1_000_000 for topic, offset in good[3]["offsets"].items()}),
    ]))

    third, _ = ready_sidecar(bootstrap_servers, topics, config, "spoilt")
    publish(bootstrap_servers, topics, later)
    alerts = read_alerts(bootstrap_servers, topics, count=len(expected), timeout=60)
    assert third.stop() == 0, third.stderr
    assert {a.id: a for a in alerts} == expected

    reasons = dict(UNUSABLE.findall(third.stderr))
    assert Counter(p for p, _ in UNUSABLE.findall(third.stderr)) == {str(p): 1 for p in range(PARTITIONS)}
    assert reasons["0"].startswith("is not msgpack")
    assert reasons["1"] == "has format 0; this version of trainsentry reads format 1"
    assert "another version of trainsentry or with another configuration" in reasons["2"]
    assert "its offsets were reset?" in reasons["3"]
    assert RESTORED.findall(third.stderr) == []
    rebuilds = rebuilt(third.stderr)
    assert {(t, p): c for t, p, c, _n, _f in rebuilds} == history_end
    assert all(start == 0 and read == offset for _t, _p, offset, read, start in rebuilds)


def test_sigkill_at_random_points_with_frequent_snapshots_loses_no_alert_and_invents_none(
        bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    events = training(trials_on_every_partition(2), steps=500, seed=11)
    expected = replay_alerts(config, events)
    assert len(expected) > 100
    rng = random.Random(8)
    frequent = ["--snapshot-interval-records", "150", "--max-batch-records", "100"]  # bound: 250
    chunks = [events[i:i + 250] for i in range(0, len(events), 250)]
    sidecars = []
    for index, chunk in enumerate(chunks):
        publish(bootstrap_servers, topics, chunk)
        if index % 2 == 0:
            sidecar = SidecarProcess(bootstrap_servers, topics, config, group_id="crashy-snapshots",
                                     extra_args=frequent).start()
            deadline = time.monotonic() + 30
            while "assigned" not in sidecar.stderr and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 1.5))  # restoring, rebuilding, or live
            sidecar.kill()
            sidecars.append(sidecar)
    with SidecarProcess(bootstrap_servers, topics, config, group_id="crashy-snapshots",
                        extra_args=frequent) as last:
        alerts = read_alerts(bootstrap_servers, topics, count=len(expected), timeout=120)
        assert last.stop() == 0, last.stderr
    assert {a.id: a for a in alerts} == expected
    # The restarts started from snapshots, and read at most an interval and a batch after them.
    logs = [sidecar.stderr for sidecar in [*sidecars, last]]
    assert sum(len(RESTORED.findall(text)) for text in logs) >= PARTITIONS
    from_snapshots = [read for text in logs for *_, read, start in rebuilt(text) if start > 0]
    assert from_snapshots and max(from_snapshots) <= 150 + 100
