"""The live sidecar: Kafka source -> decode/validate -> engine -> Kafka sink, then commit.

One batch at a time: consume (``getmany``), run the engine over it, publish the alerts, metrics
and dead letters it produced, wait for the broker's acknowledgement, then commit the batch's
offsets (that commit travels while the next batch is evaluated; each waits for the one before).
A crash anywhere in between repeats work on restart but never loses an alert, and the repeats
carry the same deterministic ids.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from trainsentry.consumers.broker import BrokerError, ensure_topics
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.kafka_sink import KafkaSink
from trainsentry.consumers.kafka_source import KafkaSource
from trainsentry.consumers.observability import SidecarMetrics
from trainsentry.consumers.records import DeadLetter, KafkaRecord, dead_letter, decode_record
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.protocol import AlertEvent, Event, MetricEvent

log = logging.getLogger("trainsentry.sidecar")
DEAD_LETTERS_LOGGED = 3
STATE_EXPORT_SECONDS = 1.0


@dataclass(frozen=True)
class SidecarOptions:
    """How the live loop behaves beyond Kafka settings."""

    poll_timeout_ms: int = 200
    idle_trial_seconds: float | None = 3600.0  # release a trial's state after this long without events
    # After every worker's end marker, how long a trial's last events on the other topic may take.
    ended_trial_grace_seconds: float = 10.0
    delivery_retry_seconds: float = 1.0


class Sidecar:
    """Runs the engine live over the tensors and logs topics until :meth:`run`'s ``stop`` is set."""

    def __init__(self, engine: Engine, settings: KafkaSettings, options: SidecarOptions = SidecarOptions(),
                 metrics: SidecarMetrics | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.options = options
        self.metrics = metrics or SidecarMetrics()
        self.source = KafkaSource(settings, [settings.topics.tensors, settings.topics.logs],
                                  on_partitions_lost=self._release_partitions)
        self.sink = KafkaSink(settings)
        self._trials_by_tp: dict[TopicPartition, set[str]] = defaultdict(set)
        self._last_seen: dict[str, float] = {}
        self._ended: set[str] = set()  # trials whose workers all sent their end marker
        self._state_exported = float("-inf")
        self.batches = 0
        self._rebalances_counted = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is then finished, published and committed."""
        topics = self.settings.topics
        partitions = await ensure_topics(self.settings.bootstrap_servers, topics.all())
        if partitions.get(topics.tensors) != partitions.get(topics.logs):
            # Both are keyed by trial: only equal counts put a trial's tensors and logs on one member.
            raise BrokerError(
                f"{topics.tensors} has {partitions.get(topics.tensors)} partitions and {topics.logs} "
                f"has {partitions.get(topics.logs)}: both need the same number, so that one sidecar "
                f"owns all of a trial")
        await self.sink.start()
        try:
            await self.source.start()
            try:
                log.info("sidecar consuming %s and %s as group %r on %s", topics.tensors, topics.logs,
                         self.settings.group_id, self.settings.bootstrap_servers)
                await self._loop(stop)
            finally:
                await self.source.stop()
        finally:
            await self.sink.stop()
        log.info("sidecar stopped after %d batches", self.batches)

    async def _loop(self, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                fetch = asyncio.ensure_future(self.source.getmany(self.options.poll_timeout_ms))
                await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    fetch.cancel()
                    break
                batch = fetch.result()
                if self.source.failure is not None:
                    raise BrokerError(f"lost track of the group's offsets: {self.source.failure}")
                if batch:
                    async with self.source.batch_lock:
                        # One turn of the event loop lets the consumer send its next fetch now,
                        # so the broker serves it while this batch is evaluated.
                        await asyncio.sleep(0)
                        # A rebalance may have taken partitions while this batch waited for the lock.
                        batch = {tp: records for tp, records in batch.items() if self.source.owns(tp)}
                        if batch:
                            await self.process_batch(batch, stop)
                self._release_idle_trials()
        finally:
            stopping.cancel()

    async def process_batch(self, batch: dict[TopicPartition, list], stop: asyncio.Event) -> None:
        """Run the engine over one batch, deliver its outputs, then commit its offsets."""
        outputs: list[Event] = []
        dead: list[DeadLetter] = []
        offsets: dict[TopicPartition, int] = {}
        metrics = self.metrics
        now = time.monotonic()
        started = time.perf_counter()
        count = 0
        process, last_seen = self.engine.process, self._last_seen  # the per-record loop's names
        for tp, records in batch.items():
            rebuild_until = self.source.rebuild_until.get(tp)
            trials = self._trials_by_tp[tp]
            for record in records:
                item = decode_record(record)
                replaying = rebuild_until is not None and record.offset < rebuild_until
                if isinstance(item, DeadLetter):
                    if not replaying:
                        dead.append(item)
                    continue
                try:
                    produced = process(item)
                except Exception as exc:  # a rule's bug must not stop every trial: set it aside
                    if not replaying:
                        dead.append(_unevaluated(record, exc))
                    continue
                trial = item.trial
                trials.add(trial)
                last_seen[trial] = now
                if produced and not replaying:
                    outputs.extend(produced)
            count += len(records)
            next_offset = records[-1].offset + 1
            if rebuild_until is None:
                offsets[tp] = next_offset
            elif next_offset >= rebuild_until:  # never commit below what was committed before
                offsets[tp] = next_offset
                self.source.mark_rebuilt(tp)
                log.info("%s[%d]: state rebuilt up to offset %d; now live", tp.topic, tp.partition,
                         rebuild_until)
            metrics.events.labels(tp.topic).inc(len(records))
            lag = self.source.lag(tp, next_offset)
            if lag is not None:
                metrics.lag.labels(tp.topic, str(tp.partition)).set(lag)
        metrics.evaluation.observe(time.perf_counter() - started)
        metrics.batch_events.observe(count)
        for notice in self.engine.drain_notices():
            log.warning("%s", notice)
        for trial in self.engine.drain_ended():
            self._ended.add(trial)
        if not await self._deliver(outputs, dead, stop):
            return  # stopping mid-outage: the inputs stay uncommitted and are processed again
        await self.source.settle_commit()
        self.source.commit_in_background(offsets)
        self.batches += 1
        self._count_outputs(outputs, dead)

    async def _deliver(self, outputs: list[Event], dead: list[DeadLetter], stop: asyncio.Event) -> bool:
        """Publish and wait for acknowledgement, retrying the whole batch until the broker takes it.

        ``False`` when asked to stop before the broker took it: nothing is committed then.
        """
        while True:
            try:
                await self.sink.send_events(outputs)
                await self.sink.send_dead_letters(dead)
                await self.sink.flush()
                return True
            except KafkaError as exc:
                self.metrics.delivery_failures.inc()
                if not exc.retriable:  # e.g. not authorised: retrying cannot help, say so and stop
                    raise
                if stop.is_set():
                    log.warning("stopping with %d output(s) undelivered (%s); their inputs stay "
                                "uncommitted and are processed again on restart",
                                len(outputs) + len(dead), exc)
                    return False
                log.warning("publishing %d output(s) failed (%s); retrying in %.1fs (offsets stay "
                            "uncommitted)", len(outputs) + len(dead), exc, self.options.delivery_retry_seconds)
                await asyncio.sleep(self.options.delivery_retry_seconds)

    def _count_outputs(self, outputs: list[Event], dead: list[DeadLetter]) -> None:
        m = self.metrics
        for event in outputs:
            if isinstance(event, AlertEvent):
                m.alerts.labels(event.rule).inc()
            elif isinstance(event, MetricEvent):
                m.metric_values.inc()
                if event.objective:
                    self._export_objective(event.trial)
        for letter in dead:
            m.dead_letters.labels(letter.topic).inc()
        for letter in dead[:DEAD_LETTERS_LOGGED]:  # a flood of poison must not flood the log too
            log.warning("dead letter %s[%d]@%d: %s", letter.topic, letter.partition, letter.offset,
                        letter.reason)
        if len(dead) > DEAD_LETTERS_LOGGED:
            log.warning("... and %d more dead letters in this batch", len(dead) - DEAD_LETTERS_LOGGED)
        stats = self.engine.stats
        m.late.set(stats.late)
        m.duplicates.set(stats.duplicate + stats.duplicate_log_lines)
        m.rebalances.inc(self.source.rebalances - self._rebalances_counted)
        self._rebalances_counted = self.source.rebalances
        self._export_state(force=False)

    def _export_state(self, force: bool = True) -> None:
        # Sizing the state walks every series: once a second is plenty for a gauge.
        now = time.monotonic()
        if not force and now - self._state_exported < STATE_EXPORT_SECONDS:
            return
        self._state_exported = now
        self.metrics.rebuilding.set(len(self.source.rebuild_until))
        self.metrics.state_bytes.set(self.engine.state_bytes())
        self.metrics.trials.set(len(self._last_seen))

    def _export_objective(self, trial: str) -> None:
        result = self.engine.objectives.result(trial) if self.engine.objectives else None
        if result is not None:
            self.metrics.objective_final.labels(trial).set(result.final)
            self.metrics.objective_best.labels(trial).set(result.best)

    def _release_partitions(self, lost: set[TopicPartition]) -> None:
        """Drop the state of trials whose partitions went to another member."""
        kept = set().union(*(trials for tp, trials in self._trials_by_tp.items() if tp not in lost))
        for tp in lost:
            self.metrics.forget_partition(tp.topic, tp.partition)
            for trial in self._trials_by_tp.pop(tp, ()):
                if trial not in kept:
                    self._forget(trial)

    def _release_idle_trials(self) -> None:
        """Release trials that ended (after a grace time) or have been idle too long."""
        now = time.monotonic()
        grace = self.options.ended_trial_grace_seconds
        released = [t for t in self._ended if now - self._last_seen.get(t, now) >= grace]
        for trial in released:
            log.info("trial %r ended: state released", trial)
            self._forget(trial)
        limit = self.options.idle_trial_seconds
        if limit is not None:
            idle = [t for t, seen in self._last_seen.items() if now - seen >= limit]
            for trial in idle:
                log.info("trial %r idle for %.0fs: state released", trial, limit)
                self._forget(trial)
            released += idle
        self._export_state(force=bool(released))

    def _forget(self, trial: str) -> None:
        self.engine.forget_trial(trial)
        self._drop_bookkeeping(trial)

    def _drop_bookkeeping(self, trial: str) -> None:
        self.metrics.forget_trial(trial)
        self._last_seen.pop(trial, None)
        self._ended.discard(trial)
        for trials in self._trials_by_tp.values():
            trials.discard(trial)


def _unevaluated(record: KafkaRecord, exc: Exception) -> DeadLetter:
    log.error("evaluating %s[%d]@%d failed: %s: %s", record.topic, record.partition, record.offset,
              type(exc).__name__, exc)
    return dead_letter(record, f"evaluation failed: {type(exc).__name__}: {exc}")
