"""The live sidecar: the driver from a consumer group on the tensors and logs topics into Kafka.

One batch at a time: consume (``getmany``), run the engine over it, publish the alerts, metrics
and dead letters it produced, wait for the broker's acknowledgement, then commit the batch's
offsets (that commit travels while the next batch is evaluated; each waits for the one before).
The driver keeps that order (:mod:`trainsentry.consumers.driver`); what is live-only is here:
Prometheus metrics, releasing the state of trials that ended, went idle, or whose partitions
went to another member, and offering the state of each input partition's trials for its snapshots
(:mod:`trainsentry.consumers.snapshots`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Sequence

from aiokafka import TopicPartition

from trainsentry.consumers.broker import BrokerError, ensure_topics
from trainsentry.consumers.driver import BatchOutcome, Driver, DriverListener
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.health import Health
from trainsentry.consumers.observability import SidecarMetrics
from trainsentry.consumers.records import DeadLetter
from trainsentry.consumers.settings import KafkaSettings, SidecarOptions
from trainsentry.consumers.sinks.base import Sink
from trainsentry.consumers.sinks.kafka import KafkaSink
from trainsentry.consumers.snapshots import PartitionSnapshots, SnapshotInterval, snapshot_topic_config
from trainsentry.consumers.sources.base import Batch
from trainsentry.consumers.sources.kafka_group import ConsumerGroupSource
from trainsentry.protocol import AlertEvent, Event, MetricEvent

log = logging.getLogger("trainsentry.sidecar")
DEAD_LETTERS_LOGGED = 3
STATE_EXPORT_SECONDS = 1.0
CLOCK_TICK_MS = 1000  # the engine's clock moves at least this often while nothing arrives
IDLE_MARGIN_SECONDS = 60.0  # a quiet trial outlives its longest stall threshold by this much


class Sidecar(DriverListener):
    """Runs the engine live over the tensors and logs topics until :meth:`run`'s ``stop`` is set.

    Outputs go to the Kafka sink, then to ``extra_sinks`` (``trainsentry run --sink``); the
    offsets are committed once all of them keep a batch. ``health`` is told, once a second, that
    the loop turns and what keeps the sidecar from being ready (``/healthz``, ``/readyz``).
    """

    def __init__(self, engine: Engine, settings: KafkaSettings, options: SidecarOptions | None = None,
                 metrics: SidecarMetrics | None = None, extra_sinks: Sequence[Sink] = (),
                 health: Health | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.options = options = options or SidecarOptions()
        self.metrics = metrics or SidecarMetrics()
        self.health = health or Health()
        snapshots = PartitionSnapshots(settings, self, SnapshotInterval(
            options.snapshot_interval_records, options.snapshot_interval_seconds)) if options.snapshots else None
        self.source = ConsumerGroupSource(settings, [settings.topics.tensors, settings.topics.logs],
                                          poll_timeout_ms=min(options.poll_timeout_ms, CLOCK_TICK_MS),
                                          on_partitions_lost=self._release_partitions,
                                          snapshots=snapshots)
        self.driver = Driver(engine, self.source, [KafkaSink(settings), *extra_sinks], listener=self,
                             retry_seconds=options.delivery_retry_seconds, clock=time.time)
        self._idle_limit = _idle_limit(options.idle_trial_seconds, engine.clock_horizon())
        self._trials_by_tp: dict[TopicPartition, set[str]] = defaultdict(set)
        # Trial -> when it was last seen, least recently seen first: the idle ones are at the front.
        self._last_seen: OrderedDict[str, float] = OrderedDict()
        self._ended: set[str] = set()  # trials whose workers all sent their end marker
        self._state_exported = float("-inf")
        self.batches = 0
        self._rebalances_counted = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is then finished, published and committed."""
        beating = asyncio.create_task(self.health.keep_beating(self.source.readiness))
        try:
            await self._run(stop)
        finally:
            beating.cancel()

    async def _run(self, stop: asyncio.Event) -> None:
        topics = self.settings.topics
        partitions = await ensure_topics(self.settings, topics.all(),
                                         configs={topics.snapshots: snapshot_topic_config(self.settings)})
        if partitions.get(topics.tensors) != partitions.get(topics.logs):
            # Both are keyed by trial: only equal counts put a trial's tensors and logs on one member.
            raise BrokerError(
                f"{topics.tensors} has {partitions.get(topics.tensors)} partitions and {topics.logs} "
                f"has {partitions.get(topics.logs)}: both need the same number, so that one sidecar "
                f"owns all of a trial")
        await self.driver.run(stop)
        log.info("sidecar stopped after %d batches", self.batches)

    # -- DriverListener ------------------------------------------------------------------------

    def started(self) -> None:
        topics = self.settings.topics
        config = self.engine.config
        for line in config.describe():  # what was loaded, one line each
            log.info("loaded %s", line)
        if config.ignored:
            log.warning("ignored (the configuration holds them, trainsentry does not use them): %s",
                        ", ".join(config.ignored))
        if self._idle_limit != self.options.idle_trial_seconds:
            log.info("quiet trials are released after %.0fs, not %.0fs: StalledTrainingRule waits "
                     "%.0fs", self._idle_limit, self.options.idle_trial_seconds,
                     self.engine.clock_horizon())
        log.info("sidecar consuming %s and %s as group %r on %s", topics.tensors, topics.logs,
                 self.settings.group_id, self.settings.bootstrap_servers)

    def evaluated(self, batch: Batch, outcome: BatchOutcome) -> None:
        metrics, now = self.metrics, time.monotonic()
        last_seen = self._last_seen
        for part in batch.parts:
            tp, records = part.lane, part.records
            trials = outcome.trials[tp]
            self._trials_by_tp[tp].update(trials)
            for trial in trials:
                last_seen[trial] = now
                last_seen.move_to_end(trial)
            metrics.events.labels(tp.topic).inc(len(records))
            lag = self.source.lag(tp, records[-1].offset + 1)
            if lag is not None:
                metrics.lag.labels(tp.topic, str(tp.partition)).set(lag)
        metrics.evaluation.observe(outcome.seconds)
        metrics.batch_events.observe(batch.size)
        for notice in self.engine.drain_notices():
            log.warning("%s", notice)
        for trial in self.engine.drain_ended():
            self._ended.add(trial)
        for trial in self.engine.drain_evicted():  # said by a notice above
            self._forget(trial)

    def delivery_failed(self, error: BaseException) -> None:
        self.metrics.delivery_failures.inc()

    def delivered(self, batch: Batch, outcome: BatchOutcome) -> None:
        self.batches += 1
        self._count_outputs(outcome.outputs, outcome.dead_letters)

    def turned(self) -> None:
        self._release_idle_trials()

    # -- metrics and trial state ---------------------------------------------------------------

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
        for reason, count in stats.evicted_trials.items():
            m.evicted_trials.labels(reason).set(count)
        m.refused_series.set(stats.refused_series)
        m.metric_lines_skipped.set(stats.metric_lines_skipped)
        m.implausible_steps.set(stats.implausible_steps)
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
            self.metrics.set_objective(trial, result.final, result.best)

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
        limit = self._idle_limit
        if limit is not None:
            idle = []
            for trial, seen in self._last_seen.items():  # least recently seen first
                if now - seen < limit:
                    break
                idle.append(trial)
            for trial in idle:
                log.info("trial %r idle for %.0fs: state released", trial, limit)
                self._forget(trial)
            released += idle
        self._export_state(force=bool(released))

    # -- the state of an input partition, for its snapshots ------------------------------------

    def partition_state(self, partition: int) -> tuple[bytes, int]:
        """The engine's snapshot of the trials seen on input ``partition``, and their count."""
        held = set().union(*(trials for tp, trials in self._trials_by_tp.items()
                             if tp.partition == partition))
        trials = [trial for trial in self.engine.trials() if trial in held]
        return self.engine.snapshot(trials), len(trials)

    def restore_partition(self, partition: int, state: bytes) -> int:
        """Hold the trials of a snapshot as trials of input ``partition``; how many."""
        trials = self.engine.restore(state)
        now = time.monotonic()
        for topic in (self.settings.topics.tensors, self.settings.topics.logs):
            self._trials_by_tp[TopicPartition(topic, partition)].update(trials)
        for trial in trials:
            self._last_seen[trial] = now
            self._last_seen.move_to_end(trial)
        return len(trials)

    def _forget(self, trial: str) -> None:
        self.engine.forget_trial(trial)
        self.metrics.forget_trial(trial)
        self._last_seen.pop(trial, None)
        self._ended.discard(trial)
        for trials in self._trials_by_tp.values():
            trials.discard(trial)


def _idle_limit(idle_seconds: float | None, horizon: float | None) -> float | None:
    """How long a trial may be quiet before its state is released: never before a rule judging
    silence (StalledTrainingRule) could have fired on it."""
    if idle_seconds is None or horizon is None or idle_seconds > horizon + IDLE_MARGIN_SECONDS:
        return idle_seconds
    return horizon + IDLE_MARGIN_SECONDS
