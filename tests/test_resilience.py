"""The sidecar under what real deployments do to it: SIGKILL, poison records, broker outages.

Each test compares the de-duplicated alerts of the live sidecar with those of the pure engine
over the same valid events: nothing lost, nothing extra, every id the same.
"""

from __future__ import annotations

import random
import threading
import time

import msgpack
import pytest

from tests.sidecar_harness import SidecarProcess, publish, read_alerts, read_dead_letters
from tests.streams import interleave, losses, replay_alerts, weights, write_config
from tests.tcp_proxy import TcpProxy
from trainsentry.consumers.broker import EmbeddedBroker, free_port
from trainsentry.protocol import ProtocolError, Topics, decode, encode

pytestmark = pytest.mark.usefixtures("broker_binary")  # brokers of its own, or none reachable


def busy_stream(trials: int, steps: int, seed: int) -> list:
    """Losses that stall now and then (many LossNotDecreasing alerts) and weights that freeze."""
    rng = random.Random(seed)
    streams = []
    for t in range(trials):
        values, value = [], 1.0
        for _ in range(steps):
            value *= rng.choice((0.97, 1.0, 1.01))
            values.append(value)
        streams.append(losses(f"trial-{t}", values, every=1))
        streams.append(weights(f"trial-{t}", steps=steps // 4, frozen_after=steps // 8))
    return interleave(*streams)


def test_sigkill_at_random_points_loses_no_alert_and_invents_none(bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    events = busy_stream(trials=6, steps=600, seed=7)
    expected = replay_alerts(config, events)
    assert len(expected) > 100
    rng = random.Random(20)
    chunks = [events[i:i + 250] for i in range(0, len(events), 250)]

    def trickle() -> None:  # the training side keeps writing while the sidecar crashes
        for chunk in chunks:
            publish(bootstrap_servers, topics, chunk)
            time.sleep(0.15)

    writer = threading.Thread(target=trickle)
    writer.start()
    kills = 0
    while kills < 20:
        sidecar = SidecarProcess(bootstrap_servers, topics, config, group_id="crashy").start()
        time.sleep(rng.uniform(0.8, 3.0))
        sidecar.kill()
        assert sidecar.process.returncode == -9
        kills += 1
    writer.join()
    with SidecarProcess(bootstrap_servers, topics, config, group_id="crashy") as sidecar:
        alerts = read_alerts(bootstrap_servers, topics, count=len(expected), timeout=120)
        assert sidecar.stop() == 0, sidecar.stderr
    assert {a.id: a for a in alerts} == expected


def poison(rng: random.Random, valid: list[bytes]) -> bytes:
    """A record that is not a valid event: random bytes, mutated events, wrong-typed maps."""
    kind = rng.randrange(5)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 200))
    if kind == 1:
        data = bytearray(rng.choice(valid))
        for _ in range(rng.randrange(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 2:
        data = rng.choice(valid)
        return data[: rng.randrange(len(data))]
    if kind == 3:
        obj = msgpack.unpackb(rng.choice(valid))
        key = rng.choice(sorted(obj))
        obj[key] = rng.choice([None, "x", -1, 1.5, [], {}, b"\xff", True, -2**40])
        return msgpack.packb(obj)
    return msgpack.packb(rng.choice([[1, 2], "event", 3, {"v": 1}, {"v": 1, "type": "tensor"}]))


def test_ten_thousand_poison_records_change_nothing_and_all_reach_the_dead_letter_topic(
        bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    events = busy_stream(trials=2, steps=200, seed=3)
    expected = replay_alerts(config, events)
    rng = random.Random(10_000)
    valid = [encode(e) for e in events]
    bad: list[bytes] = []
    while len(bad) < 10_000:
        record = poison(rng, valid)
        try:
            decode(record)
        except ProtocolError:
            bad.append(record)
    # Each poison record goes to a trial's partition, between that trial's valid events.
    mixed: list[tuple[bytes, bytes]] = [(e.trial.encode(), encode(e)) for e in events]
    for record in bad:
        mixed.insert(rng.randrange(len(mixed) + 1), (rng.choice((b"trial-0", b"trial-1")), record))
    with SidecarProcess(bootstrap_servers, topics, config) as sidecar:
        for key in (b"trial-0", b"trial-1"):
            publish(bootstrap_servers, topics, [value for k, value in mixed if k == key], key=key)
        alerts = read_alerts(bootstrap_servers, topics, count=len(expected), timeout=60)
        letters = read_dead_letters(bootstrap_servers, topics, count=len(bad), timeout=60)
        assert sidecar.process.poll() is None, sidecar.stderr
        assert sidecar.stop() == 0
    assert {a.id: a for a in alerts} == expected
    assert sorted(letter["value"] for letter in letters) == sorted(bad)
    assert all(letter["reason"].startswith("field ") for letter in letters)


def test_broker_outage_mid_stream_is_survived(tmp_path) -> None:
    config = write_config(tmp_path)
    front = free_port()
    with EmbeddedBroker(advertised_port=front) as broker:
        proxy = TcpProxy(front, broker.port).start()
        servers = f"127.0.0.1:{front}"
        topics = Topics("outage")
        first = busy_stream(trials=4, steps=2000, seed=1)
        second = losses("after-outage", [1.0] * 12)
        expected = replay_alerts(config, first + second)
        publish(servers, topics, first)
        # Small batches: the stream takes the sidecar seconds, so the outage falls in its middle.
        with SidecarProcess(servers, topics, config, group_id="outage",
                            extra_args=["--max-batch-records", "20"]) as sidecar:
            before = read_alerts(servers, topics, count=1, timeout=60)
            proxy.cut()
            assert 1 <= len(before) < len(expected)  # the outage is mid-stream
            time.sleep(6.0)  # longer than the session timeout: the group forgets this member
            assert sidecar.process.poll() is None, sidecar.stderr
            proxy.restore()
            publish(servers, topics, second)
            alerts = read_alerts(servers, topics, count=len(expected), timeout=90)
            assert sidecar.stop() == 0, sidecar.stderr
        proxy.stop()
    assert {a.id: a for a in alerts} == expected
