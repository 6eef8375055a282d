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

Nothing on the topic can stop it or make it spin: a record keyed with this trial that is not a
valid alert of it (bytes that do not decode, a value nested too deep, another kind of event, an
alert of another trial) is counted in :meth:`AlertFollower.stats`, said once through ``logging``
and skipped. The follower remembers the next offset of every partition it read, so after a
reconnect it resumes there and never reads a record twice. Failures to reach or read the broker
are retried after a wait that doubles from 0.5 s up to ``settings.reconnect_max_backoff_s``; a
streak of failures is one warning, and reading from the broker again (records, or
``HEALTHY_POLLS`` successful reads in a row) ends the streak.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trainsentry.protocol import AlertEvent, Topics, decode
from trainsentry.protocol.rendering import brief
from trainsentry.protocol.settings import DEFAULT_CLIENT_ID

from .kafka_client_options import KafkaClientOptions
from .kafka_connection import FIRST_BACKOFF_S, describe_connection_failure, import_aiokafka
from .kafka_logging import (
    last_client_error_in_this_thread,
    quiet_aiokafka_in_this_thread,
    unquiet_aiokafka_in_this_thread,
)
from .settings import SenderSettings

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer

log = logging.getLogger("trainsentry.producers")

CLIENT_ID = f"{DEFAULT_CLIENT_ID}-alert-follower"
# A failure streak ends when a read brings records or after this many reads in a row succeed: a
# consumer that fails right after its first read must not start a new streak (and warning) each time.
HEALTHY_POLLS = 10


class UnreadableAlert(ValueError):
    """A record keyed with the followed trial that is not a valid alert of that trial."""


@dataclass(frozen=True)
class FollowerStats:
    """What an :class:`AlertFollower` has done since it was created."""

    records_read: int
    """Records of the alerts topic taken in (every trial's); each record counts once."""
    unreadable: int
    """Records keyed with this trial that are not a valid alert of it: counted and skipped."""
    connects: int
    """Consumers started (1 while the broker stays reachable)."""
    failures: int
    """Failed attempts to start a consumer or to read with it; each is followed by a wait."""
    backoff_s: float
    """The wait after the latest failure (0 before any)."""


class AlertFollower:
    """Follows the alerts of one trial in the background.

    ``rules`` keeps only alerts whose rule name or rule type is listed. An alert whose details
    hold ``stop_training`` says itself whether training is to stop (StalledTrainingRule's
    ``stop_training_on_fire``): ``true`` counts whatever ``rules`` lists, ``false`` counts only
    when ``rules`` names its rule. With
    ``from_beginning`` (the default) every alert of the trial counts, also those published before
    the follower started. With ``from_beginning=False`` only alerts whose triggering event was
    written at or after the moment the follower was created count: an alert's ``ts`` is not when
    the sidecar raised it but the ``ts`` of the newest input event behind it, stamped by the clock
    of the process that wrote that event, and it is compared with this process's clock when the
    follower was created. An alert the sidecar raises later about events written earlier is
    skipped. ``on_alert`` is called on the follower's thread for each new alert; what it raises is
    logged, never propagated.

    ``settings`` says how to reach the cluster (``kafka_config`` for TLS and SASL, the backoff
    cap); ``bootstrap_servers`` and ``topic_prefix`` override its own. As for
    :class:`~.publisher.TensorPublisher`, a Kafka security configuration that cannot be used raises
    :class:`~trainsentry.protocol.kafka_properties.KafkaConfigError` from the constructor; an
    unreachable broker does not.
    """

    def __init__(self, trial: str, *, rules: Iterable[str] | None = None,
                 on_alert: Callable[[AlertEvent], None] | None = None,
                 from_beginning: bool = True, bootstrap_servers: str | None = None,
                 topic_prefix: str | None = None, poll_interval_ms: int = 100,
                 settings: SenderSettings | None = None, start: bool = True) -> None:
        settings = settings or SenderSettings()
        overrides = {k: v for k, v in (("bootstrap_servers", bootstrap_servers),
                                       ("topic_prefix", topic_prefix)) if v is not None}
        if overrides:
            settings = dataclasses.replace(settings, **overrides)
        self.trial = trial
        self.rules = frozenset(rules) if rules is not None else None
        self.on_alert = on_alert
        self.settings = settings
        self.options = KafkaClientOptions.resolve(settings, CLIENT_ID)
        self.bootstrap_servers = self.options.bootstrap_servers
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
        # Written by the follower thread only; read by stats().
        self._next_offsets: dict[int, int] = {}  # partition -> the offset after the last one read
        self._records_read = self._unreadable = self._connects = self._failures = 0
        self._streak = 0                  # failures since the broker last answered a read
        self._backoff_s = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None  # set by close(): ends a wait between attempts
        self._consumer_class: type[AIOKafkaConsumer] | None = None  # aiokafka's, once started
        self._consumer: AIOKafkaConsumer | None = None  # the started one, on the follower's loop
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

    def stats(self) -> FollowerStats:
        return FollowerStats(self._records_read, self._unreadable, self._connects, self._failures,
                             self._backoff_s)

    def close(self, timeout: float = 5.0) -> None:
        self._stop_requested.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already stopped
                loop.call_soon_threadsafe(wake.set)
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
        self._wake = asyncio.Event()  # before _loop: close() wakes it once it sees the loop
        self._loop = asyncio.get_running_loop()
        while not self._stop_requested.is_set():
            last_client_error_in_this_thread()  # an older one must not pass for this attempt's cause
            consumer = self._new_consumer()
            try:
                await consumer.start()
            except Exception as exc:
                await self._stop_quietly(consumer)
                self._note_failure(f"cannot reach Kafka at {self.bootstrap_servers} to follow alerts", exc)
                await self._wait_before_retry()
                continue
            self._connects += 1
            self._consumer = consumer
            failed = False
            try:
                await self._read(consumer)
            except Exception as exc:
                failed = True
                self._note_failure("following alerts failed", exc)
            finally:
                self._consumer = None
                await self._stop_quietly(consumer)
            if failed:
                await self._wait_before_retry()

    def _new_consumer(self) -> AIOKafkaConsumer:
        consumer_class = self._consumer_class
        assert consumer_class is not None  # start() sets it before it starts this thread
        return consumer_class(
            self.topic, bootstrap_servers=self.bootstrap_servers, group_id=None,
            enable_auto_commit=False, auto_offset_reset="earliest",
            # Tansu answers a waiting fetch only when the wait ends: this is the latency.
            fetch_max_wait_ms=self._poll_ms, metadata_max_age_ms=5000,
            **self.options.connection)  # security_protocol, ssl_context, sasl_*, client_id

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        """Read until closed, starting each partition after what was read before a reconnect."""
        positioned: set[Any] = set()
        healthy_polls = 0
        while not self._stop_requested.is_set():
            assignment = consumer.assignment()
            positioned &= assignment  # a partition assigned anew starts from aiokafka's default
            for tp in assignment - positioned:
                if tp.partition in self._next_offsets:
                    consumer.seek(tp, self._next_offsets[tp.partition])
                positioned.add(tp)
            batches = await consumer.getmany(timeout_ms=self._poll_ms)
            healthy_polls += 1
            if self._streak and (batches or healthy_polls >= HEALTHY_POLLS):
                log.info("trainsentry: following alerts at %s again", self.bootstrap_servers)
                self._streak = 0
            for tp, records in batches.items():
                # A partition assigned during that wait was read from the beginning before it
                # could be moved: what was read already is skipped. Once moved, aiokafka's
                # positions are trusted (they start over on a topic that was deleted and remade).
                resume = 0 if tp in positioned else self._next_offsets.get(tp.partition, 0)
                for record in records:
                    if record.offset >= resume:
                        self._take(tp.partition, record.offset, record.key, record.value)

    def _take(self, partition: int, offset: int, key: bytes | None, value: bytes | None) -> None:
        self._next_offsets[partition] = offset + 1
        self._records_read += 1
        try:
            self._handle(key, value)
        except Exception as exc:  # whatever a record holds, it costs one count, never the follower
            self._unreadable += 1
            if self._unreadable == 1:
                log.warning("trainsentry: skipped a record on %s (partition %d, offset %d) that is "
                            "not a valid alert of trial %s: %s; later ones are only counted "
                            "(AlertFollower.stats().unreadable)", self.topic, partition, offset,
                            brief(self.trial), _describe(exc))
            else:
                log.debug("trainsentry: skipped record %d:%d on %s: %s", partition, offset,
                          self.topic, _describe(exc))

    def _handle(self, key: bytes | None, value: bytes | None) -> None:
        """Keep the record if it is a new alert of this trial; :class:`UnreadableAlert` or
        :class:`~trainsentry.protocol.ProtocolError` if it is keyed with the trial but is not one."""
        if key != self._key:  # another trial's alert: not even decoded
            return
        if value is None:
            raise UnreadableAlert("the record has no value")
        event = decode(value)
        if not isinstance(event, AlertEvent):
            raise UnreadableAlert(f"a {event.type} event, not an alert")
        if event.trial != self.trial:
            raise UnreadableAlert(f"an alert of trial {brief(event.trial)} under this trial's key")
        if not self._asks_to_stop(event):
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

    def _asks_to_stop(self, event: AlertEvent) -> bool:
        """Whether ``event`` counts for :meth:`should_stop` (see the class docstring)."""
        named = self.rules is not None and (event.rule in self.rules or event.rule_type in self.rules)
        stop = event.details.get("stop_training") if isinstance(event.details, Mapping) else None
        if stop is True:
            return True
        if stop is False:
            return named
        return self.rules is None or named

    def _note_failure(self, what: str, exc: BaseException) -> None:
        self._failures += 1
        self._streak += 1
        self._backoff_s = min(FIRST_BACKOFF_S * 2 ** (self._streak - 1),
                              self.settings.reconnect_max_backoff_s)
        reason = describe_connection_failure(exc)
        if self._streak == 1:
            log.warning("trainsentry: %s (%s); retrying, with waits up to %g s. Training goes on; "
                        "alerts are seen once Kafka answers.", what, reason,
                        self.settings.reconnect_max_backoff_s)
        else:
            log.debug("trainsentry: %s again (%s); next attempt in %g s", what, reason,
                      self._backoff_s)

    async def _wait_before_retry(self) -> None:
        assert self._wake is not None
        if self._stop_requested.is_set():
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._backoff_s)

    @staticmethod
    async def _stop_quietly(consumer: AIOKafkaConsumer) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), 2.0)


def _describe(exc: BaseException, limit: int = 300) -> str:
    """The error in one bounded line: a record's error may quote (briefly) what the record holds."""
    text = " ".join((str(exc) or type(exc).__name__).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
