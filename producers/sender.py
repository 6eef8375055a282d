"""The background sender: a daemon thread with its own asyncio loop that drains the buffer into Kafka.

The training thread only ever calls :meth:`BackgroundSender.submit`, which puts an item into a
bounded :class:`~.buffer.EventBuffer` and returns. Everything that can be slow or fail happens on
the sender thread, and nothing raised there reaches the training thread: a failure is counted as a
lost event and reported through ``logging`` at most once per ``report_interval_s``. The parts:

- :mod:`.kafka_connection`: the client, connecting, reconnecting with backoff, stopping;
- :mod:`.record_batches`: encoding, partitioning and batching what is taken from the buffer;
- :mod:`.delivery_ledger`: what became of each item (:class:`SenderStats`);
- this module: the thread, its loop, pacing, and the training thread's calls.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .buffer import EventBuffer
from .delivery_ledger import DeliveryLedger, SenderStats
from .drop_report import DropReporter
from .kafka_client_options import KafkaClientOptions
from .kafka_connection import CLIENT_ID, KafkaConnection
from .kafka_logging import quiet_aiokafka_in_this_thread, unquiet_aiokafka_in_this_thread
from .loop_signals import CloseRequest, StateChanged
from .record_batches import Encoder, RecordBatcher
from .settings import SenderSettings

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

__all__ = ["BackgroundSender", "Encoder", "SenderStats"]

log = logging.getLogger("trainsentry.producers")

# How many items the sender takes from the buffer at a time (and, after the first, at most
# max_batch_bytes of them): enough to fill a batch, few enough that items taken but not yet
# handed to Kafka stay a small share of the buffer.
TAKE_ITEMS = 1024
# An idle sender sleeps until the training thread wakes it, but looks at least this often
# whether lost events need reporting.
IDLE_CHECK_S = 1.0
# close() waits for the thread this long past the deadline the thread honours itself: stopping
# the producer takes a moment.
STOP_MARGIN_S = 1.0


class BackgroundSender:
    """Sends items to Kafka from a daemon thread; :meth:`submit` never blocks and never raises.

    Creating one reads the Kafka properties (a security configuration that cannot be used raises
    :class:`~trainsentry.protocol.kafka_properties.KafkaConfigError` here, see
    :mod:`.kafka_client_options`), imports aiokafka and starts the thread. Call :meth:`close` when
    done; interpreter exit closes it too, waiting at most ``settings.close_timeout_s`` for
    buffered events.
    """

    def __init__(self, settings: SenderSettings | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or SenderSettings()
        options = KafkaClientOptions.resolve(self.settings, CLIENT_ID)
        self.bootstrap_servers = options.bootstrap_servers
        self._buffer = EventBuffer(self.settings.buffer_bytes, self.settings.drop)
        self._ledger = DeliveryLedger()
        self._reporter = DropReporter(self._loss_context, self.settings.report_interval_s, clock)
        self._close = CloseRequest()
        self._changed = StateChanged()   # what flush() waits on: connection, buffer and hand-over
        self._connection = KafkaConnection(self.settings, options, self._close,
                                           self._changed, clock, self._report_losses)
        self._batcher = RecordBatcher(self._ledger)
        self._rest_per_busy = (1 - self.settings.max_cpu_share) / self.settings.max_cpu_share
        self._loop = asyncio.new_event_loop()
        self._work_event = asyncio.Event()
        self._idle = False               # the sender waits for _work_event; submit() must set it
        self._thread = threading.Thread(target=self._run, name="trainsentry-sender", daemon=True)
        self._thread.start()
        atexit.register(self._close_at_exit)

    # --- the training thread's side -----------------------------------------------------------

    def submit(self, topic: str, key: bytes, payload: Any, encode: Encoder, size: int) -> bool:
        """Queue ``payload`` for ``topic``; ``encode(payload)`` runs later on the sender thread.

        ``size`` is what the item counts against the buffer. Returns ``False`` when the item was
        dropped (buffer full under the ``newest`` policy, or the sender is closed).
        """
        if self._close.requested:
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
        return self._ledger.stats(dropped=self._buffer.dropped, buffered_bytes=self._buffer.bytes,
                                  connected=self._connection.producer is not None)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is acknowledged; ``False`` on timeout or when closed."""
        if self._close.requested or not self._thread.is_alive():
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
        if self._close.requested:
            return
        timeout = self.settings.close_timeout_s if timeout is None else timeout
        self._close.request(timeout)
        atexit.unregister(self._close_at_exit)
        with contextlib.suppress(RuntimeError):  # the loop has already stopped
            self._loop.call_soon_threadsafe(self._announce_close)
        self._thread.join(timeout + STOP_MARGIN_S)
        self._reporter.final(self._lost())

    def __enter__(self) -> BackgroundSender:
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
            self._ledger.give_up(self._buffer.close())
            self._cancel_leftover_tasks()
            self._loop.close()
            self._ledger.stopped = True
            unquiet_aiokafka_in_this_thread()

    async def _main(self) -> None:
        producer = await self._connection.connect()
        if producer is None:  # closed while no broker answers: nothing can be delivered
            self._ledger.give_up(self._buffer.close())
            return
        pump = asyncio.create_task(self._pump(producer))
        await self._close.event.wait()
        # The pump sees the close request, drains what is left and returns; it gets until the deadline.
        await asyncio.wait({pump}, timeout=self._close.remaining_s())
        if not pump.done():
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        self._ledger.give_up(self._buffer.close())
        self._changed.notify()
        await self._connection.stop()

    async def _pump(self, producer: AIOKafkaProducer) -> None:
        while True:
            self._report_losses()
            items = self._buffer.take(TAKE_ITEMS, self.settings.max_batch_bytes)
            if not items:
                if self._close.requested:
                    return
                await self._wait_for_work()
                continue
            started = time.thread_time()
            self._ledger.take(len(items))
            await self._batcher.send(producer, items)
            self._changed.notify()  # every item taken is now handed over or failed
            # This thread shares the GIL with training: after a busy stretch, step aside long enough
            # that sending takes at most max_cpu_share of the time. When that is too little for the
            # rate of events, the buffer fills and the drop policy decides, and training goes on.
            busy = time.thread_time() - started
            await asyncio.sleep(busy * self._rest_per_busy)

    async def _wait_for_work(self) -> None:
        self._work_event.clear()
        self._idle = True
        if not len(self._buffer) and not self._close.requested:  # an event may have come in just before
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._work_event.wait(), IDLE_CHECK_S)
        self._idle = False
        # Let the rest of the burst arrive (a saved step publishes many tensors at once): one
        # batch instead of many, and no competing for the GIL while training is still capturing.
        if not self._close.requested:
            await asyncio.sleep(self.settings.linger_ms / 1000)

    async def _flush(self) -> bool:
        connection = self._connection
        # Still connecting: wait for the producer, but give up once the broker is known down.
        await self._changed.wait_for(lambda: connection.producer is not None
                                     or connection.unreachable_since is not None
                                     or self._close.requested)
        if connection.producer is None:
            return False
        await self._changed.wait_for(lambda: not len(self._buffer) and not self._ledger.in_hand)
        producer = connection.producer
        if producer is None:
            return False
        await producer.flush()
        return self._ledger.unsettled() == 0

    def _announce_close(self) -> None:
        self._close.announce()
        self._work_event.set()
        self._changed.notify()

    def _cancel_leftover_tasks(self) -> None:
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        if tasks:
            with contextlib.suppress(Exception):
                self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        with contextlib.suppress(Exception):
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())

    # --- losses ----------------------------------------------------------------------------------

    def _lost(self) -> int:
        """Everything given up so far; once stopped, also what was sent but never acknowledged."""
        return self._ledger.lost(self._buffer.dropped)

    def _report_losses(self) -> None:
        self._reporter.poll(self._lost())

    def _loss_context(self) -> str:
        return (f"{self._buffer.dropped} for a full buffer (policy: drop {self.settings.drop.value}), "
                f"{self._ledger.not_delivered()} not delivered; "
                f"Kafka at {self.bootstrap_servers} is slow or unreachable")
