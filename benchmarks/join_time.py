"""Start-up latency of the sidecar: from launching ``trainsentry run`` to its first alert.

The sidecar runs as an operator starts it (the CLI's own group settings, no test shortcuts), in
its own process, against a trial already waiting on the tensors topic whose third loss trips
LossNotDecreasing. Four starts in one consumer group, one after the other: a fresh group; a restart
after the previous sidecar stopped on SIGTERM; a restart after it was killed (SIGKILL, so it never
left the group); and, for scale, the time the process needs before its consumer starts (Python and
the imports). The same again with static membership (``--group-instance-id``).

Each figure is the time from launch to the alert's arrival at a reader in this process: it
includes the process start, the group join and one fetch. On Tansu a join round takes about half
the session timeout.

    python -m benchmarks.join_time
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks import cluster
from benchmarks.processes import Child
from benchmarks.report import Row, Section, number, render_text
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sources.topic_reader import read_topics
from trainsentry.protocol import ScalarEvent, Topics, encode

RULES = '[[rules]]\ntype = "LossNotDecreasing"\nnum_steps = 2\n'
ALERT_TIMEOUT_S = 90.0


def run(servers: str) -> Section:
    section = Section("sidecar start-up (launch to first alert)")
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "rules.toml"
        config.write_text(RULES)
        for label, extra in (("dynamic membership", []),
                             ("static membership", ["--group-instance-id", "bench-sidecar-0"])):
            for figure, seconds in starts(servers, config, extra):
                section.rows.append(Row(f"{label}: {figure}", f"{number(seconds)} s"))
    section.notes.append(f"CLI defaults: session timeout "
                         f"{KafkaSettings('x').session_timeout_ms} ms, heartbeat a third of it")
    return section


def starts(servers: str, config: Path, extra: list[str]) -> list[tuple[str, float]]:
    topics = cluster.fresh_topics("join")
    group = f"bench-join-{uuid.uuid4().hex[:8]}"
    asyncio.run(cluster.create(servers, topics))
    figures = []
    sidecar: Child | None = None
    try:
        publish_tripping_trial(servers, topics, "fresh")
        sidecar, seconds = launch_until_alert(servers, topics, config, group, extra, "fresh")
        figures.append(("fresh group", seconds))
        for how in (signal.SIGTERM, signal.SIGKILL):
            sidecar.process.send_signal(how)
            sidecar.process.wait(30)
            sidecar.__exit__()
            trial = f"after-{how.name}"
            publish_tripping_trial(servers, topics, trial)
            sidecar, seconds = launch_until_alert(servers, topics, config, group, extra, trial)
            figures.append((f"restart after {how.name}", seconds))
        figures.append(("process start to consumer started", consumer_start(servers, topics, config)))
    finally:
        if sidecar is not None:
            sidecar.__exit__()
        asyncio.run(cluster.drop(servers, topics))
    return figures


def command(servers: str, topics: Topics, config: Path, group: str, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "trainsentry.consumers.cli", "run", "--log-level", "INFO",
            "--config", str(config), "--bootstrap-servers", servers, "--topic-prefix", topics.prefix,
            "--group-id", group, *extra]


def launch_until_alert(servers: str, topics: Topics, config: Path, group: str, extra: list[str],
                       trial: str) -> tuple[Child, float]:
    """A sidecar launched now, and the seconds until the alert of ``trial`` arrived."""
    started = time.monotonic()
    sidecar = Child(command(servers, topics, config, group, extra)).__enter__()
    try:
        arrived = asyncio.run(first_alert(servers, topics, trial))
        sidecar.check_alive()
        if arrived is None:
            raise RuntimeError(f"no alert of {trial} within {ALERT_TIMEOUT_S} s:\n{sidecar.stderr()[-2000:]}")
    except BaseException:
        sidecar.__exit__()
        raise
    return sidecar, arrived - started


def consumer_start(servers: str, topics: Topics, config: Path) -> float:
    """Seconds from launch to the sidecar's "consuming" line (its consumer started, not joined)."""
    started = time.monotonic()
    with Child(command(servers, topics, config, f"bench-join-{uuid.uuid4().hex[:8]}", [])) as sidecar:
        while "sidecar consuming" not in sidecar.stderr():
            sidecar.check_alive()
            time.sleep(0.01)
        return time.monotonic() - started


def publish_tripping_trial(servers: str, topics: Topics, trial: str) -> None:
    events = [ScalarEvent(trial, time.time(), "TRAIN", step, "loss", value, collections=("losses",))
              for step, value in enumerate([1.0, 0.9, 1.1])]
    asyncio.run(cluster.produce(servers, topics.tensors, [(trial.encode(), encode(e)) for e in events]))


async def first_alert(servers: str, topics: Topics, trial: str) -> float | None:
    """When the first alert of ``trial`` reached this process (``time.monotonic()``)."""
    stop = asyncio.Event()
    deadline = asyncio.get_running_loop().call_later(ALERT_TIMEOUT_S, stop.set)
    try:
        async for records in read_topics(KafkaSettings(servers, topics=topics), [topics.alerts],
                                         follow=True, keys={trial.encode()}, stop=stop):
            if records:
                return time.monotonic()
        return None
    finally:
        deadline.cancel()


if __name__ == "__main__":
    with cluster.cluster() as bootstrap_servers:
        print(render_text([run(bootstrap_servers)]))
