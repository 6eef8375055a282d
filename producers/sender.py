"""The background sender: a daemon thread with its own asyncio loop and one ``AIOKafkaProducer``.

The training thread only ever calls :meth:`BackgroundSender.submit`, which puts an item into a
bounded :class:`~.buffer.EventBuffer` and returns. Everything that can be slow or fail (encoding,
connecting, batching, waiting for acknowledgements, reconnecting) happens on the sender thread, and
nothing raised there reaches the training thread: a failure is counted as a lost event and reported
through ``logging`` at most once per ``report_interval_s``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from .buffer import EventBuffer
from .drop_report import DropReporter
from .kafka_logging import quiet_aiokafka_in_this_thread, unquiet_aiokafka_in_this_thread
from .settings import SenderSettings

log = logging.getLogger("trainsentry.producers")

Encoder = Callable[[Any], bytes]

# How many items the sender takes from the buffer at a time (and, after the first, at most
# max_batch_bytes of them): enough to fill a batch, few enough that items taken but not yet
# handed to Kafka stay a small share of the buffer.
_TAKE = 1024
# An idle sender sleeps until the training thread wakes it, but looks at least this often
# whether lost events need reporting.
_IDLE_CHECK_S = 1.0


@dataclass(frozen=True)
class SenderStats:
    """Counters of one sender. ``lost`` is what was given up, for whatever reason."""

    sent: int
    """Acknowledged by the broker."""
    dropped: int
    """Given up on the training side because the buffer was full (the drop policy chose them)."""
    failed: int
    """Taken from the buffer but not delivered: encoding error, broker error, timeout, shutdown."""
    buffered_bytes: int
    connected: bool
    """Whether the producer is up (it may still be waiting for a broker that went away)."""

    @property
    def lost(self) -> int:
        return self.dropped + self.failed


class BackgroundSender:
    """Sends items to Kafka from a daemon thread; :meth:`submit` never blocks and never raises.

    Call :meth:`close` when done; interpreter exit closes it too, waiting at most
    ``settings.close_timeout_s`` for buffered events.
    """

    def __init__(self, settings: SenderSettings | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or SenderSettings()
        self.bootstrap_servers = self.settings.resolved_bootstrap_servers()
        self._buffer = EventBuffer(self.settings.buffer_bytes, self.settings.drop)
        self._reporter = DropReporter(self._loss_context, self.settings.report_interval_s, clock)
        self._clock = clock
        self._rest_per_busy = (1 - self.settings.max_cpu_share) / self.settings.max_cpu_share
        self._failed = 0             # taken from the buffer, never handed to the producer
        self._handed = 0             # handed to the producer; settled by a delivery callback
        self._delivered = 0
        self._delivery_failed = 0
        self._in_hand = 0            # taken from the buffer, not yet handed or failed
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[tuple[str, bytes], int] = {}
        self._unreachable_since: float | None = None
        self._closing = False
        self._stopped = False        # the sender thread has finished
        self._deadline = float("inf")
        self._loop = asyncio.new_event_loop()
        self._closing_event = asyncio.Event()
        self._work_event = asyncio.Event()
        self._idle = False           # the sender waits for _work_event; submit() must set it
        self._thread = threading.Thread(target=self._run, name="trainsentry-sender", daemon=True)
        self._thread.start()
        atexit.register(self._close_at_exit)

    # --- the training thread's side -----------------------------------------------------------

    def submit(self, topic: str, key: bytes, payload: Any, encode: Encoder, size: int) -> bool:
        """Queue ``payload`` for ``topic``; ``encode(payload)`` runs later on the sender thread.

        ``size`` is what the item counts against the buffer. Returns ``False`` when the item was
        dropped (buffer full under the ``newest`` policy, or the sender is closed).
        """
        if self._closing:
            return False
        # The flag above is only a shortcut: close() may set it right after it was read. The
        # buffer itself refuses an item once the sender thread has closed it and counted what it
        # held, so an accepted item is always sent or counted as failed.
        accepted = self._buffer.put((topic, key, payload, encode), size)
        if self._idle:
            # Only the first event after a quiet spell pays for a wake-up; an idle sender otherwise
            # never runs, and never takes the GIL from training.
            self._idle = False
            with contextlib.suppress(RuntimeError):  # the loop has already stopped
                self._loop.call_soon_threadsafe(self._work_event.set)
        return accepted

    def stats(self) -> SenderStats:
        # dropped is read once: the training thread may drop more between two reads, and failed
        # must not be computed from a different value of it (it could come out short, or < 0).
        return SenderStats(
            sent=self._delivered, dropped=self._buffer.dropped, failed=self._not_delivered(),
            buffered_bytes=self._buffer.bytes, connected=self._producer is not None)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is acknowledged; ``False`` on timeout or when closed."""
        if self._closing or not self._thread.is_alive():
            return False
        timeout = self.settings.close_timeout_s if timeout is None else timeout
        try:
            future = asyncio.run_coroutine_threadsafe(self._flush(), self._loop)
        except RuntimeError:  # the loop has already stopped
            return False
        try:
            return future.result(timeout)
        except Exception:  # TimeoutError, or the loop stopped under us
            future.cancel()
            return False

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is buffered within ``timeout`` seconds (default ``close_timeout_s``), then stop.

        Returns at once when the broker is known to be unreachable: waiting could not help.
        """
        if self._closing:
            return
        timeout = self.settings.close_timeout_s if timeout is None else timeout
        self._deadline = time.monotonic() + timeout
        self._closing = True
        atexit.unregister(self._close_at_exit)
        with contextlib.suppress(RuntimeError):  # the loop has already stopped
            self._loop.call_soon_threadsafe(self._closing_event.set)
            self._loop.call_soon_threadsafe(self._work_event.set)
        # The sender honours the deadline itself; the margin covers stopping the producer.
        self._thread.join(timeout + 1.0)
        self._reporter.final(self._lost())

    def __enter__(self) -> "BackgroundSender":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _close_at_exit(self) -> None:
        try:
            self.close()
        except Exception:  # never turn a clean interpreter exit into a traceback
            pass

    # --- the sender thread ---------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        quiet_aiokafka_in_this_thread()
        try:
            self._loop.run_until_complete(self._main())
        except Exception:
            log.exception("trainsentry: the sender stopped unexpectedly; events are no longer sent")
        finally:
            # Normally done already; after an unexpected stop, what was taken or waits is lost,
            # and whatever is submitted from now on is refused (submit() says so).
            self._failed += self._in_hand + self._buffer.close()
            self._in_hand = 0
            self._cancel_leftover_tasks()
            self._loop.close()
            self._stopped = True
            unquiet_aiokafka_in_this_thread()

    async def _main(self) -> None:
        producer = await self._connect()
        if producer is None:  # closed while no broker answers: nothing can be delivered
            self._failed += self._buffer.close()
            return
        self._producer = producer
        pump = asyncio.create_task(self._pump(producer))
        await self._closing_event.wait()
        # The pump sees the closing flag, drains what is left and returns; it gets until the deadline.
        await asyncio.wait({pump}, timeout=self._remaining())
        if not pump.done():
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        self._failed += self._in_hand + self._buffer.close()
        self._in_hand = 0
        await self._stop_producer(producer)
        self._producer = None

    async def _connect(self) -> AIOKafkaProducer | None:
        """A started producer; ``None`` once closing makes waiting for one pointless."""
        backoff = 0.5
        while True:
            producer = self._new_producer()
            start = asyncio.ensure_future(producer.start())
            finished = await self._finishes_before_closing(start)
            if not finished and self._unreachable_since is None:
                # Closing during the very first attempt: the broker may well be there, so what is
                # buffered gets until the deadline (a broker known to be down gets nothing).
                await asyncio.wait({start}, timeout=self._remaining())
                finished = start.done()
            if not finished:
                start.cancel()
                with contextlib.suppress(BaseException):
                    await start
                await self._stop_quietly(producer)
                return None
            error = start.exception()
            if error is None:
                if self._unreachable_since is not None:
                    log.warning("trainsentry: reached Kafka at %s; sending events", self.bootstrap_servers)
                return producer
            await self._stop_quietly(producer)
            self._note_unreachable(error)
            if self._closing:
                return None
            self._reporter.poll(self._lost())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closing_event.wait(), backoff)
            if self._closing:
                return None
            backoff = min(backoff * 2, self.settings.reconnect_max_backoff_s)

    async def _finishes_before_closing(self, task: asyncio.Future) -> bool:
        closing = asyncio.ensure_future(self._closing_event.wait())
        try:
            await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
        return task.done()

    def _new_producer(self) -> AIOKafkaProducer:
        s = self.settings
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            acks=1,  # acks=0 is broken on Tansu; idempotence is unsupported there
            enable_idempotence=False,
            linger_ms=s.linger_ms,
            max_batch_size=s.max_batch_bytes,
            max_request_size=s.max_record_bytes + 64 * 1024,  # room for the event's other fields
            compression_type=s.compression,
            request_timeout_ms=int(s.request_timeout_s * 1000),
            client_id="trainsentry-producer",
        )

    async def _pump(self, producer: AIOKafkaProducer) -> None:
        while True:
            self._reporter.poll(self._lost())
            items = self._buffer.take(_TAKE, self.settings.max_batch_bytes)
            if not items:
                if self._closing:
                    return
                await self._wait_for_work()
                continue
            started = time.thread_time()
            self._in_hand = len(items)
            for (topic, key), values in self._encode(items).items():
                await self._send(producer, topic, key, values)
            # This thread shares the GIL with training: after a busy stretch, step aside long enough
            # that sending takes at most max_cpu_share of the time. When that is too little for the
            # rate of events, the buffer fills and the drop policy decides, and training goes on.
            busy = time.thread_time() - started
            await asyncio.sleep(busy * self._rest_per_busy)

    async def _wait_for_work(self) -> None:
        self._work_event.clear()
        self._idle = True
        if not len(self._buffer) and not self._closing:  # an event may have come in just before
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._work_event.wait(), _IDLE_CHECK_S)
        self._idle = False
        # Let the rest of the burst arrive (a saved step publishes many tensors at once): one
        # batch instead of many, and no competing for the GIL while training is still capturing.
        if not self._closing:
            await asyncio.sleep(self.settings.linger_ms / 1000)

    def _encode(self, items: list[tuple[str, bytes, Any, Encoder]]) -> dict[tuple[str, bytes], list[bytes]]:
        """Encode items, grouped by (topic, key): each group goes to one partition as one batch."""
        groups: dict[tuple[str, bytes], list[bytes]] = {}
        for topic, key, payload, encode in items:
            try:
                value = encode(payload)
            except Exception as exc:
                self._settle_failed(1)
                _warn_once(f"encode:{type(exc).__name__}",
                           "trainsentry: an event could not be encoded and was dropped: %r", exc)
                continue
            groups.setdefault((topic, key), []).append(value)
        return groups

    async def _send(self, producer: AIOKafkaProducer, topic: str, key: bytes,
                    values: list[bytes]) -> None:
        # Whole batches instead of one send() per record: a fraction of the CPU per event, and
        # this thread shares the GIL with training.
        try:
            partition = await self._partition_for(producer, topic, key)
        except Exception as exc:  # no metadata: the broker is gone or the topic cannot be created
            self._settle_failed(len(values))
            log.debug("trainsentry: no partition for %s: %r", topic, exc)
            return
        batch, count = producer.create_batch(), 0
        for value in values:
            if batch.append(key=key, value=value, timestamp=None) is None:
                if count:
                    await self._hand_over(producer, batch, topic, partition, count)
                batch, count = producer.create_batch(), 0
                if batch.append(key=key, value=value, timestamp=None) is None:
                    self._settle_failed(1)  # larger than a whole batch may be
                    continue
            count += 1
        if count:
            await self._hand_over(producer, batch, topic, partition, count)

    async def _hand_over(self, producer: AIOKafkaProducer, batch: Any, topic: str, partition: int,
                         count: int) -> None:
        try:
            delivery = await producer.send_batch(batch, topic, partition=partition)
        except Exception as exc:  # KafkaTimeoutError while the broker is away, and the like
            self._settle_failed(count)
            log.debug("trainsentry: batch of %d for %s not sent: %r", count, topic, exc)
            return
        self._in_hand -= count
        self._handed += count
        delivery.add_done_callback(functools.partial(self._on_delivery, count))

    async def _partition_for(self, producer: AIOKafkaProducer, topic: str, key: bytes) -> int:
        """The partition the default (murmur2) partitioner picks for ``key``, as any client would."""
        partition = self._partitions.get((topic, key))
        if partition is None:
            partitions = sorted(await producer.partitions_for(topic))
            partition = self._partitions[(topic, key)] = DefaultPartitioner()(key, partitions, partitions)
        return partition

    def _settle_failed(self, count: int) -> None:
        self._in_hand -= count
        self._failed += count

    def _on_delivery(self, count: int, delivery: asyncio.Future) -> None:
        if delivery.cancelled() or delivery.exception() is not None:
            self._delivery_failed += count
        else:
            self._delivered += count

    async def _flush(self) -> bool:
        while self._producer is None:  # still connecting; give up once the broker is known down
            if self._unreachable_since is not None or self._closing:
                return False
            await asyncio.sleep(0.005)
        while len(self._buffer) or self._in_hand:
            await asyncio.sleep(0.002)
        producer = self._producer
        if producer is None:
            return False
        await producer.flush()
        return self._unsettled() == 0

    async def _stop_producer(self, producer: AIOKafkaProducer) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.flush(), self._remaining())
        try:
            # stop() waits for batches still in flight; a vanished broker would keep it waiting.
            await asyncio.wait_for(producer.stop(), max(self._remaining(), 0.2))
        except Exception:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.client.close(), 0.5)

    async def _stop_quietly(self, producer: AIOKafkaProducer) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), 1.0)

    def _cancel_leftover_tasks(self) -> None:
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        if tasks:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        with contextlib.suppress(Exception):
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())

    # --- bookkeeping ---------------------------------------------------------------------------

    def _remaining(self) -> float:
        return max(0.0, self._deadline - time.monotonic())

    def _unsettled(self) -> int:
        return self._handed - self._delivered - self._delivery_failed

    def _note_unreachable(self, exc: BaseException | None) -> None:
        if self._unreachable_since is not None:
            log.debug("trainsentry: Kafka at %s still unreachable: %r", self.bootstrap_servers, exc)
            return
        self._unreachable_since = self._clock()
        s = self.settings
        log.warning(
            "trainsentry: cannot reach Kafka at %s (%s). Training goes on: events wait in a %d MiB "
            "buffer (the %s are dropped when it is full) and the sender keeps retrying.",
            self.bootstrap_servers, _describe(exc), s.buffer_bytes // (1024 * 1024), s.drop.value)

    def _lost(self) -> int:
        """Everything given up so far; once stopped, also what was sent but never acknowledged."""
        return self._buffer.dropped + self._not_delivered()

    def _not_delivered(self) -> int:
        """Taken from the buffer and given up (``failed``); once stopped, also the unacknowledged."""
        unacknowledged = self._unsettled() if self._stopped else 0
        return self._failed + self._delivery_failed + unacknowledged

    def _loss_context(self) -> str:
        return (f"{self._buffer.dropped} for a full buffer (policy: drop {self.settings.drop.value}), "
                f"{self._not_delivered()} not delivered; "
                f"Kafka at {self.bootstrap_servers} is slow or unreachable")


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no answer"
    return str(exc) or type(exc).__name__


_warned: set[str] = set()


def _warn_once(key: str, message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)
