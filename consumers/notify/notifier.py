"""The notifier: its own consumer group on the alerts topic, alerts to messages to destinations.

One turn of the loop reads a batch, keeps the alerts that pass the filter (each alert id once), lets
the throttle decide which go out now, queues those messages to every destination, and opens a
checkpoint for the batch; about once a second, the throttle's closed windows become summaries.
When every destination has delivered (or given up) every message of a checkpoint, the partition's
throttle state is written to the state topic and its offset committed, in that order. So:

- a restart resumes after the last message kept, with the throttle as it was: nothing is sent
  twice and no alert held back is lost;
- a crash (``kill -9``) while messages are in flight sends those again, also to the destinations
  that had them (at least once: the checkpoint was not complete);
- a destination that fails is retried on its own, so the others go on; the commit waits for it
  until it delivers or gives up.

A group that has never committed a partition starts at "now": records written before its first
start are history and are not notified (``start="beginning"`` notifies them). Tansu's end offsets
are unreliable, so "now" is the record time of the first start, kept in the state topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from trainsentry.consumers.broker import BrokerError, ensure_topics
from trainsentry.consumers.settings import KafkaSettings

from .alert_records import NotAnAlert, read_alert_record
from .checkpoints import CheckpointLog
from .delivery import DestinationWorker, Fanout, RetryPolicy
from .destinations import Destination
from .filters import AlertFilter
from .message import Notification, alert_notification, summary_notification
from .settings import DEFAULT_NOTIFY_GROUP, DEFAULT_START, NotifySettings
from .state_store import PartitionState, StateStore
from .throttle import Throttle

log = logging.getLogger("trainsentry.notify")
BAD_RECORDS_LOGGED = 3
RECENT_IDS_KEPT = 4096      # per partition: the sidecar's repeats come close together
REVOKE_WAIT_SECONDS = 10.0  # how long a partition being handed over waits for its messages


@dataclass(frozen=True)
class NotifyOptions:
    """How the loop runs, beyond what is sent where."""

    alerts_topic: str
    group_id: str = DEFAULT_NOTIFY_GROUP
    start: str = DEFAULT_START      # where a partition this group never committed starts: now | beginning
    poll_timeout_ms: int = 200
    tick_seconds: float = 1.0       # how often closed throttle windows are looked for
    stop_timeout_seconds: float = 10.0
    tz: tzinfo | None = None        # times in messages; None: the local time zone


@dataclass
class NotifyStats:
    alerts: int = 0          # valid alerts read (not history, kept by the filter, not repeats)
    bad_records: int = 0
    history: int = 0
    filtered: int = 0
    duplicates: int = 0
    held_back: int = 0
    messages: int = 0        # messages queued to the destinations, summaries included
    summaries: int = 0


@dataclass
class _Lane:
    """One partition of the alerts topic, as this notifier holds it."""

    throttle: Throttle
    history_before_ms: int | None = None
    changed: bool = False                         # throttle changed since the last checkpoint
    kept_offset: int | None = None
    kept_throttle: dict[str, Any] = field(default_factory=dict)
    needs_save: bool = False
    needs_commit: bool = False
    _recent: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT_IDS_KEPT))
    _recent_set: set[str] = field(default_factory=set)

    def first_time(self, alert_id: str) -> bool:
        """``False`` for an id seen lately (the alerts topic is written at least once)."""
        if alert_id in self._recent_set:
            return False
        if len(self._recent) == self._recent.maxlen:
            self._recent_set.discard(self._recent[0])
        self._recent.append(alert_id)
        self._recent_set.add(alert_id)
        return True


class Notifier(ConsumerRebalanceListener):
    """Runs until :meth:`run`'s ``stop`` is set; see the module doc."""

    def __init__(self, kafka: KafkaSettings, settings: NotifySettings, options: NotifyOptions,
                 destinations: list[Destination], *, clock: Callable[[], float] = time.time) -> None:
        self.kafka = kafka
        self.settings = settings
        self.options = options
        self.clock = clock
        self.filter = AlertFilter.of(settings.trials, settings.rules, settings.min_severity)
        self.stats = NotifyStats()
        policy = RetryPolicy(settings.first_backoff_seconds, settings.max_backoff_seconds,
                             settings.give_up_after_seconds)
        self._progress = asyncio.Event()
        self.workers = [DestinationWorker(d, policy, on_finished=self._progress.set) for d in destinations]
        self.fanout = Fanout(self.workers)
        self.checkpoints = CheckpointLog()
        self.store = StateStore(kafka, options.group_id)
        self._lanes: dict[TopicPartition, _Lane] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._last_tick = float("-inf")
        self.failure: Exception | None = None

    # --- the loop ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        topic = self.options.alerts_topic
        await ensure_topics(self.kafka, [topic])
        await self.store.start()
        tasks = [asyncio.create_task(worker.run()) for worker in self.workers]
        self._consumer = AIOKafkaConsumer(
            **self.kafka.client_kwargs("notify"), group_id=self.options.group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", fetch_max_wait_ms=self.kafka.fetch_max_wait_ms,
            session_timeout_ms=self.kafka.session_timeout_ms,
            heartbeat_interval_ms=self.kafka.heartbeat_interval_ms,
            request_timeout_ms=self.kafka.request_timeout_ms)
        try:
            await self._consumer.start()
            self._consumer.subscribe([topic], listener=self)
            log.info("notifying %d destination(s) of the alerts on %s as group %r: %s", len(self.workers),
                     topic, self.options.group_id, ", ".join(w.destination.label for w in self.workers))
            await self._loop(stop)
        finally:
            await self._finish(tasks)

    async def _loop(self, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                fetch = asyncio.ensure_future(self._consumer.getmany(
                    timeout_ms=self.options.poll_timeout_ms, max_records=self.kafka.max_batch_records))
                await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    fetch.cancel()
                    with contextlib.suppress(asyncio.CancelledError, KafkaError):
                        await fetch
                    break
                batch = fetch.result()
                if self.failure is not None:
                    raise BrokerError(f"notify lost track of its partitions: {self.failure}")
                for tp, records in batch.items():
                    if tp in self._lanes and records:
                        await self._read(tp, records)
                    elif records and tp in self._consumer.assignment():
                        # Fetched while the partition was still being resumed: read them again.
                        self._consumer.seek(tp, records[0].offset)
                await self._tick()
                await self._keep_ready()
        finally:
            stopping.cancel()

    async def _read(self, tp: TopicPartition, records: list) -> None:
        lane = self._lanes[tp]
        stats = self.stats
        now = self.clock()
        notes: list[Notification] = []
        for record in records:
            if lane.kept_offset is not None and record.offset < lane.kept_offset:
                continue  # before the resumed position (fetched before the seek took effect)
            if lane.history_before_ms is not None and record.timestamp < lane.history_before_ms:
                stats.history += 1
                continue
            item = read_alert_record(record)
            if isinstance(item, NotAnAlert):
                stats.bad_records += 1
                if stats.bad_records <= BAD_RECORDS_LOGGED:
                    log.warning("skipping %s[%d]@%d: %s%s", tp.topic, item.partition, item.offset,
                                item.reason, " (further bad records are counted, not logged)"
                                if stats.bad_records == BAD_RECORDS_LOGGED else "")
                continue
            alert = item.alert
            if not self.filter.keeps(alert, item.severity):
                stats.filtered += 1
                continue
            if not lane.first_time(alert.id):
                stats.duplicates += 1
                continue
            stats.alerts += 1
            lane.changed = True
            send = lane.throttle.offer(alert, item.severity, now)
            if send is None:
                stats.held_back += 1
            else:
                notes.append(alert_notification(send, self.options.tz))
        await self._queue(tp, lane, notes, offset=records[-1].offset + 1)

    async def _tick(self) -> None:
        """Summaries of the throttle windows that closed with alerts held back."""
        if time.monotonic() - self._last_tick < self.options.tick_seconds:
            return
        self._last_tick = time.monotonic()
        now = self.clock()
        for tp, lane in list(self._lanes.items()):
            summaries = lane.throttle.due(now)
            if summaries:
                lane.changed = True
                self.stats.summaries += len(summaries)
                notes = [summary_notification(s, self.settings.wait_seconds, now, self.options.tz)
                         for s in summaries]
                await self._queue(tp, lane, notes, offset=None)

    async def _queue(self, tp: TopicPartition, lane: _Lane, notes: list[Notification],
                     offset: int | None) -> None:
        state = lane.throttle.state() if lane.changed else None
        lane.changed = False
        checkpoint = self.checkpoints.open(tp, offset, state, len(notes) * len(self.fanout))
        for note in notes:
            self.stats.messages += 1
            await self.fanout.put(note, checkpoint)

    async def _keep_ready(self) -> None:
        """Write the state, then commit the offset, of every partition whose messages are all done."""
        for tp, ready in self.checkpoints.take_ready().items():
            lane = self._lanes.get(tp)
            if lane is None:
                continue
            if ready.offset is not None:
                lane.kept_offset, lane.needs_commit = ready.offset, True
            if ready.state is not None:
                lane.kept_throttle, lane.needs_save = ready.state, True
        offsets: dict[TopicPartition, int] = {}
        for tp, lane in self._lanes.items():
            if lane.needs_save:
                try:
                    await self.store.save(tp, PartitionState(lane.kept_offset, lane.kept_throttle,
                                                             lane.history_before_ms))
                except KafkaError as exc:  # tried again at the next turn; nothing is committed before
                    log.warning("writing the notify state of %s[%d] failed (%s); retrying", tp.topic,
                                tp.partition, exc)
                    continue
                lane.needs_save = False
            if lane.needs_commit and lane.kept_offset is not None:
                offsets[tp] = lane.kept_offset
        if offsets:
            try:
                await self._consumer.commit(offsets)
            except KafkaError as exc:
                log.warning("commit of %d partition(s) failed (%s); retrying", len(offsets), exc)
                return
            for tp in offsets:
                self._lanes[tp].needs_commit = False

    async def _finish(self, tasks: list[asyncio.Task]) -> None:
        """Give the messages in hand a bounded time, keep what was delivered, close everything."""
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(w.wait_idle() for w in self.workers)),
                                       self.options.stop_timeout_seconds)
            if self._consumer is not None and self._lanes:
                with contextlib.suppress(KafkaError):
                    await self._keep_ready()
            waiting = self.checkpoints.waiting()
            if waiting:
                log.warning("stopping with messages of %d batch(es) not delivered everywhere; they are "
                            "sent again on restart", waiting)
        finally:
            for worker in self.workers:
                await worker.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._consumer is not None:
                await self._consumer.stop()
            await self.store.stop()
            self._log_counts()

    def _log_counts(self) -> None:
        s = self.stats
        log.info("notify stopped: %d alerts (%d held back by the throttle), %d messages (%d summaries); "
                 "skipped %d bad records, %d filtered out, %d repeats, %d history", s.alerts, s.held_back,
                 s.messages, s.summaries, s.bad_records, s.filtered, s.duplicates, s.history)
        for worker in self.workers:
            c = worker.counts
            log.info("%s: %d delivered, %d failed attempts, %d given up", worker.destination.name,
                     c.delivered, c.failed_attempts, c.given_up)

    # --- ConsumerRebalanceListener ---------------------------------------------------------------

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Let the messages of the partitions leaving finish (bounded), keep their position, let go."""
        ours = [tp for tp in revoked if tp in self._lanes]
        if not ours:
            return
        deadline = time.monotonic() + REVOKE_WAIT_SECONDS
        while any(self.checkpoints.waiting(tp) for tp in ours) and time.monotonic() < deadline:
            self._progress.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._progress.wait(), max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(KafkaError):
            await self._keep_ready()
        for tp in ours:
            self.checkpoints.drop(tp)
            del self._lanes[tp]

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        gained = [tp for tp in assigned if tp not in self._lanes]
        if not gained:
            return
        try:
            await self._take(gained)
        except Exception as exc:  # aiokafka would only log it; the loop stops and says why
            self.failure = exc
            log.error("cannot resume partitions %s (%s: %s)", gained, type(exc).__name__, exc)

    async def _take(self, gained: list[TopicPartition]) -> None:
        states = await self.store.load(gained)
        for tp in gained:
            committed = await self._consumer.committed(tp)
            state = states.get(tp)
            lane = _Lane(Throttle(self.settings.wait_seconds))
            if state is not None:
                lane.throttle.restore(state.throttle)
                lane.kept_throttle = state.throttle
                lane.history_before_ms = state.history_before_ms
                lane.kept_offset = committed
                if state.offset is not None and (committed is None or state.offset > committed):
                    # The state was written and the commit did not follow: resume from the state.
                    self._consumer.seek(tp, state.offset)
                    lane.kept_offset, lane.needs_commit = state.offset, True
            elif committed is None and self.options.start == "now":
                # Compared with the records' own timestamps: the wall clock, not the throttle's.
                lane.history_before_ms = int(time.time() * 1000)
                await self.store.save(tp, PartitionState(None, {}, lane.history_before_ms))
            self._lanes[tp] = lane
        log.info("notifying for %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(gained)))
