"""``/healthz`` and ``/readyz`` beside ``/metrics``: live while the loop turns, ready once the group
is joined and its partitions rebuilt; a stuck loop and a lost broker turn them unhealthy. And a
sidecar that stops leaves its group, so the next one to start with the same group id is not kept
waiting for a member that is gone."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.sidecar_harness import SidecarProcess, publish, read_alerts
from tests.streams import losses, replay_alerts, write_config
from trainsentry.consumers.broker import EmbeddedBroker, ensure_topics, free_port
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.health import Health, ProbeLimits
from trainsentry.consumers.observability import SidecarMetrics
from trainsentry.consumers.settings import KafkaSettings, SidecarOptions
from trainsentry.consumers.sidecar import Sidecar
from trainsentry.consumers.status_server import StatusServer
from trainsentry.protocol import Topics
from trainsentry.rules.config import load_config

pytestmark = pytest.mark.usefixtures("broker_binary")  # brokers of its own, or none reachable
PATIENCE_S = 30  # how long a probe may take to change its answer before the test gives up


def probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def wait_for(port: int, path: str, status: int, check_alive: Callable[[], None] = lambda: None) -> list[str]:
    """Probe until ``path`` answers ``status``; every answer seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + PATIENCE_S
    while True:
        try:
            code, text = probe(port, path)
        except OSError:  # not listening yet
            code, text = 0, ""
        if code:
            seen.append(f"{code} {text.strip()}")
        if code == status:
            return seen
        check_alive()
        assert time.monotonic() < deadline, f"{path} never answered {status}: {seen[-3:]}"
        time.sleep(0.1)


def listening_address(port: int) -> str:
    """The local address a socket listening on ``port`` is bound to, from /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if int(hex_port, 16) == port and state == "0A":  # LISTEN
            return ".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0))
    raise AssertionError(f"nothing listens on port {port}")


async def group_members(bootstrap_servers: str, group: str) -> list:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        [described] = response.groups
        return list(described[5])  # (error_code, group, state, protocol_type, protocol, members)
    finally:
        await admin.close()


def test_the_probes_follow_the_sidecar_and_it_leaves_its_group(bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    port = free_port()
    group = f"probes-{topics.prefix}"
    sidecar = SidecarProcess(bootstrap_servers, topics, config, group_id=group,
                             extra_args=["--metrics-port", str(port)]).start()
    try:
        def alive() -> None:
            assert sidecar.process.poll() is None, sidecar.stderr

        wait_for(port, "/healthz", 200, alive)
        before = wait_for(port, "/readyz", 200, alive)
        assert listening_address(port) == "127.0.0.1"       # --metrics-bind's default: loopback
        assert probe(port, "/metrics")[1].count("trainsentry_events_consumed") >= 1
        events = losses("probed", [0.3, 0.33, 0.31, 0.30, 0.28])
        publish(bootstrap_servers, topics, events)
        assert len(read_alerts(bootstrap_servers, topics, count=1)) == len(replay_alerts(config, events))
        assert asyncio.run(group_members(bootstrap_servers, group))
        assert sidecar.stop() == 0, sidecar.stderr
    finally:
        if sidecar.process.poll() is None:
            sidecar.kill()
    # Not ready until the group was joined, and it said why.
    assert any(seen.startswith("503 not ok: not in the consumer group") for seen in before), before
    assert before[-1].startswith("200 ok")
    # It left the group: a sidecar starting now with this group id joins at once.
    assert asyncio.run(group_members(bootstrap_servers, group)) == []


def test_a_metrics_address_this_machine_does_not_have_is_one_line_exit_2(tmp_path) -> None:
    config = write_config(tmp_path)
    done = subprocess.run([sys.executable, "-m", "trainsentry.consumers.cli", "run", "--config", str(config),
                           "--bootstrap-servers", "127.0.0.1:1", "--metrics-port", str(free_port()),
                           "--metrics-bind", "203.0.113.7"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "--metrics-port: cannot listen on port" in done.stderr and "203.0.113.7" in done.stderr


@contextmanager
def sidecar_in_a_thread(bootstrap_servers: str, tmp_path: Path, limits: ProbeLimits) -> Iterator[
        tuple[int, asyncio.AbstractEventLoop]]:
    """A sidecar on an event loop of its own thread, its probes on a free port: (port, loop)."""
    topics = Topics(prefix=f"probe-{free_port()}")
    asyncio.run(ensure_topics(bootstrap_servers, topics.all()))
    settings = KafkaSettings(bootstrap_servers, topics=topics, group_id=topics.prefix,
                             session_timeout_ms=2000, heartbeat_interval_ms=500)
    health = Health(limits)
    metrics = SidecarMetrics()
    server = StatusServer(metrics.registry, health, 0)
    sidecar = Sidecar(Engine(load_config(write_config(tmp_path))), settings, SidecarOptions(), metrics,
                      health=health)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    stop = asyncio.Event()
    running = asyncio.run_coroutine_threadsafe(sidecar.run(stop), loop)
    try:
        yield server.port, loop
    finally:
        loop.call_soon_threadsafe(stop.set)
        try:
            running.result(60)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
            server.close()


def test_a_stuck_event_loop_fails_healthz_until_it_turns_again(bootstrap_servers, tmp_path) -> None:
    with sidecar_in_a_thread(bootstrap_servers, tmp_path, ProbeLimits(stalled_after_s=1)) as (port, loop):
        wait_for(port, "/readyz", 200)
        loop.call_soon_threadsafe(time.sleep, 4)  # a batch that blocks the loop, say
        stuck = wait_for(port, "/healthz", 503)
        assert "the event loop has not turned" in stuck[-1]
        assert "the event loop has not turned" in probe(port, "/readyz")[1]
        wait_for(port, "/healthz", 200)
        wait_for(port, "/readyz", 200)


def test_a_lost_broker_turns_readyz_unhealthy(tmp_path) -> None:
    with EmbeddedBroker() as broker, sidecar_in_a_thread(broker.bootstrap_servers, tmp_path,
                             ProbeLimits(silent_after_s=2)) as (port, _loop):
        wait_for(port, "/readyz", 200)
        broker.stop()
        lost = wait_for(port, "/readyz", 503)
        assert "no fetch answered" in lost[-1] or "not in the consumer group" in lost[-1], lost
        assert probe(port, "/healthz")[0] == 200  # the loop still turns: no restart is needed
