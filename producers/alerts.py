"""Stop a doomed run early: follow the alerts the sidecar publishes for this trial.

SageMaker Debugger's ``StopTraining`` action, in the training loop's hands::

    follower = AlertFollower(trial=hook.trial, rules=["LossNotDecreasing"])
    for step, batch in enumerate(loader):
        ...
        if follower.should_stop():
            print("stopping:", follower.alerts[0].message)
            break
    follower.close()

A daemon thread reads the alerts topic with its own consumer (no consumer group, so nothing is
committed and every follower sees every alert) and keeps the alerts of its trial, once per alert
``id`` (delivery is at least once). The training thread only reads a flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from trainsentry.protocol import AlertEvent, ProtocolError, Topics, decode
from trainsentry.protocol.settings import DEFAULT_CLIENT_ID

from .kafka_connection import import_aiokafka
from .kafka_logging import quiet_aiokafka_in_this_thread, unquiet_aiokafka_in_this_thread
from .settings import SenderSettings

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer

log = logging.getLogger("trainsentry.producers")

CLIENT_ID = f"{DEFAULT_CLIENT_ID}-alert-follower"


class AlertFollower:
    """Follows the alerts of one trial in the background.

    ``rules`` keeps only alerts whose rule name or built-in rule type is listed. With
    ``from_beginning`` (the default) every alert of the trial counts, also those published before
    the follower started. With ``from_beginning=False`` only alerts whose triggering event was
    written at or after the moment the follower was created count: an alert's ``ts`` is not when
    the sidecar raised it but the ``ts`` of the newest input event behind it, stamped by the clock
    of the process that wrote that event, and it is compared with this process's clock when the
    follower was created. An alert the sidecar raises later about events written earlier is
    skipped. ``on_alert`` is called on the follower's thread for each new alert; what it raises is
    logged, never propagated.
    """

    def __init__(self, trial: str, *, rules: Iterable[str] | None = None,
                 on_alert: Callable[[AlertEvent], None] | None = None,
                 from_beginning: bool = True, bootstrap_servers: str | None = None,
                 topic_prefix: str | None = None, poll_interval_ms: int = 100,
                 start: bool = True) -> None:
        settings = SenderSettings(bootstrap_servers=bootstrap_servers, topic_prefix=topic_prefix)
        self.trial = trial
        self.rules = frozenset(rules) if rules is not None else None
        self.on_alert = on_alert
        self.bootstrap_servers = settings.resolved_bootstrap_servers()
        self.topic = Topics(settings.resolved_topic_prefix()).alerts
        # Compared with an alert's ts: the writer's timestamp of its triggering event.
        self.since = None if from_beginning else time.time()
        self._poll_ms = poll_interval_ms
        self._key = trial.encode("utf-8")
        self._seen: set[str] = set()
        self._alerts: list[AlertEvent] = []
        self._lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._matched = threading.Event()
        self._consumer_class: type[AIOKafkaConsumer] | None = None  # aiokafka's, once started
        self._thread = threading.Thread(target=self._run, name="trainsentry-alerts", daemon=True)
        if start:
            self.start()

    def start(self) -> AlertFollower:
        if not self._thread.is_alive() and not self._stop_requested.is_set():
            # Imported here, on the caller's thread, so that a missing package says so at once.
            self._consumer_class = import_aiokafka().AIOKafkaConsumer
            self._thread.start()
        return self

    # --- what the training loop asks -----------------------------------------------------------

    def should_stop(self) -> bool:
        """Whether an alert of this trial (passing the rule filter) has arrived."""
        return self._matched.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until :meth:`should_stop` is true or ``timeout`` passes; returns it."""
        return self._matched.wait(timeout)

    @property
    def alerts(self) -> list[AlertEvent]:
        """The distinct alerts seen so far, in arrival order."""
        with self._lock:
            return list(self._alerts)

    def close(self, timeout: float = 5.0) -> None:
        self._stop_requested.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> AlertFollower:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the follower thread -------------------------------------------------------------------

    def _run(self) -> None:
        quiet_aiokafka_in_this_thread()
        try:
            asyncio.run(self._follow())
        except Exception:
            log.exception("trainsentry: the alert follower stopped unexpectedly")
        finally:
            unquiet_aiokafka_in_this_thread()

    async def _follow(self) -> None:
        consumer_class = self._consumer_class
        assert consumer_class is not None  # start() sets it before it starts this thread
        backoff, warned = 0.5, False
        while not self._stop_requested.is_set():
            consumer = consumer_class(
                self.topic, bootstrap_servers=self.bootstrap_servers, group_id=None,
                enable_auto_commit=False, auto_offset_reset="earliest",
                # Tansu answers a waiting fetch only when the wait ends: this is the latency.
                fetch_max_wait_ms=self._poll_ms, metadata_max_age_ms=5000,
                client_id=CLIENT_ID)
            try:
                await consumer.start()
            except Exception as exc:
                if not warned:
                    log.warning("trainsentry: cannot reach Kafka at %s to follow alerts (%s); retrying",
                                self.bootstrap_servers, exc)
                    warned = True
                await self._stop_quietly(consumer)
                await self._sleep_unless_stopped(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            try:
                while not self._stop_requested.is_set():
                    batches = await consumer.getmany(timeout_ms=self._poll_ms)
                    for records in batches.values():
                        for record in records:
                            self._handle(record.key, record.value)
            except Exception as exc:
                log.warning("trainsentry: following alerts failed (%r); reconnecting", exc)
            finally:
                await self._stop_quietly(consumer)

    def _handle(self, key: bytes | None, value: bytes | None) -> None:
        if key != self._key or value is None:  # another trial's alert: not even decoded
            return
        try:
            event = decode(value)
        except ProtocolError:
            return
        if not isinstance(event, AlertEvent) or event.trial != self.trial:
            return
        if self.rules is not None and event.rule not in self.rules and event.rule_type not in self.rules:
            return
        if self.since is not None and event.ts < self.since:
            return
        with self._lock:
            if event.id in self._seen:
                return
            self._seen.add(event.id)
            self._alerts.append(event)
        self._matched.set()
        if self.on_alert is not None:
            try:
                self.on_alert(event)
            except Exception:
                log.exception("trainsentry: the on_alert callback raised; following goes on")

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self._stop_requested.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    @staticmethod
    async def _stop_quietly(consumer: AIOKafkaConsumer) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), 2.0)
