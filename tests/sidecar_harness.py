"""Run the real sidecar beside a test, publish events to it, and read back what it published.

The sidecar runs as it does in production: ``trainsentry run`` in its own process, in a consumer
group, on the same broker as the test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from aiokafka import AIOKafkaProducer

from trainsentry.consumers.records import decode_dead_letter
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sources.topic_reader import read_topics
from trainsentry.protocol import AlertEvent, Event, LogEvent, MetricEvent, Topics, decode, encode

# Short group timeouts: a Tansu rebalance round takes about session_timeout_ms / 2.
TEST_SESSION_TIMEOUT_MS = 2000


class SidecarProcess:
    """``trainsentry run`` as a child process; its stderr is kept for the test to read."""

    def __init__(self, bootstrap_servers: str, topics: Topics, config: str | Path,
                 group_id: str | None = None, extra_args: Sequence[str] = ()) -> None:
        self.args = [
            sys.executable, "-m", "trainsentry.consumers.cli", "run",
            "--config", str(config), "--bootstrap-servers", bootstrap_servers,
            "--topic-prefix", topics.prefix, "--group-id", group_id or f"g-{uuid.uuid4().hex[:8]}",
            "--session-timeout-ms", str(TEST_SESSION_TIMEOUT_MS), *extra_args,
        ]
        self.process: subprocess.Popen | None = None
        self._stderr: list[str] = []
        self._reader: threading.Thread | None = None

    def start(self) -> SidecarProcess:
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        return self

    def _drain(self) -> None:
        assert self.process and self.process.stderr
        for line in self.process.stderr:
            self._stderr.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait until the sidecar says it is consuming (its signal handlers are in place)."""
        assert self.process
        deadline = time.monotonic() + timeout
        while "sidecar consuming" not in self.stderr:
            if self.process.poll() is not None or time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Signal the process and wait for it; its exit code."""
        assert self.process
        if sig != signal.SIGKILL:
            self.wait_ready()
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        if self._reader:
            self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def __enter__(self) -> SidecarProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.kill()


@contextmanager
def running_sidecar(bootstrap_servers: str, topics: Topics, config: str | Path,
                    **kwargs: object) -> Iterator[SidecarProcess]:
    """The sidecar running for the duration of the block, stopped (SIGTERM) after it."""
    sidecar = SidecarProcess(bootstrap_servers, topics, config, **kwargs).start()
    try:
        yield sidecar
    finally:
        if sidecar.process and sidecar.process.poll() is None:
            sidecar.stop()


async def publish_async(bootstrap_servers: str, topics: Topics, events: Iterable[Event | bytes],
                        topic: str | None = None, key: bytes | None = None) -> None:
    """Publish events (or raw bytes) as the training side would, keyed by trial."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=5,
                                max_request_size=64 * 1024 * 1024)
    await producer.start()
    try:
        for item in events:
            if isinstance(item, bytes):
                await producer.send(topic or topics.tensors, item, key=key)
                continue
            target = topic or (topics.logs if isinstance(item, LogEvent) else topics.tensors)
            await producer.send(target, encode(item), key=item.trial.encode())
        await producer.flush()
    finally:
        await producer.stop()


def publish(bootstrap_servers: str, topics: Topics, events: Iterable[Event | bytes], **kwargs) -> None:
    asyncio.run(publish_async(bootstrap_servers, topics, events, **kwargs))


async def _collect(bootstrap_servers: str, topic: str, until_count: int | None, timeout: float) -> list:
    settings = KafkaSettings(bootstrap_servers=bootstrap_servers)
    stop = asyncio.Event()
    values: list[bytes] = []

    async def reader() -> None:
        async for records in read_topics(settings, [topic], follow=until_count is not None, stop=stop):
            values.extend(r.value for r in records)
            if until_count is not None and len(values) >= until_count:
                stop.set()

    try:
        await asyncio.wait_for(reader(), timeout)
    except TimeoutError:
        pass
    return values


def read_alerts(bootstrap_servers: str, topics: Topics, count: int | None = None,
                timeout: float = 30) -> list[AlertEvent]:
    """Alerts on the alerts topic, distinct by id: wait for ``count`` of them, or read what is there."""
    alerts: dict[str, AlertEvent] = {}
    asyncio.run(_until_distinct(bootstrap_servers, topics.alerts, count, timeout, alerts))
    return list(alerts.values())


async def _until_distinct(bootstrap_servers: str, topic: str, count: int | None, timeout: float,
                          alerts: dict[str, AlertEvent]) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        for value in await _collect(bootstrap_servers, topic, None, max(1.0, end - loop.time())):
            alert = decode(value)
            alerts.setdefault(alert.id, alert)
        if count is None or len(alerts) >= count or loop.time() >= end:
            return
        await asyncio.sleep(0.2)


def read_alert_records(bootstrap_servers: str, topics: Topics, timeout: float = 10) -> list[AlertEvent]:
    """Every alert record on the alerts topic, repeats included (delivery is at least once)."""
    return [decode(v) for v in asyncio.run(_collect(bootstrap_servers, topics.alerts, None, timeout))]


def read_metrics(bootstrap_servers: str, topics: Topics, timeout: float = 30) -> list[MetricEvent]:
    return [decode(v) for v in asyncio.run(_collect(bootstrap_servers, topics.metrics, None, timeout))]


def read_dead_letters(bootstrap_servers: str, topics: Topics, count: int | None = None,
                      timeout: float = 30) -> list[dict]:
    values = asyncio.run(_collect(bootstrap_servers, topics.deadletter, count, timeout))
    return [decode_dead_letter(v) for v in values]
