"""The sender's Kafka client: started once a broker answers, retried with backoff, stopped by a deadline.

aiokafka is imported when a connection is created (a sender starts), never when trainsentry is
imported: the protocol, the rules and code that only builds events need no Kafka client.

While no broker answers, attempts are retried with a backoff that doubles from 0.5 s up to
``reconnect_max_backoff_s``; the first failure is one warning saying what it means for training,
the later ones are debug messages. How to connect (TLS, SASL) comes from
:class:`~.kafka_client_options.KafkaClientOptions`, resolved before the sender thread starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

from trainsentry.protocol.settings import DEFAULT_CLIENT_ID

from .kafka_client_options import KafkaClientOptions
from .kafka_logging import last_client_error_in_this_thread
from .loop_signals import CloseRequest, StateChanged
from .settings import SenderSettings

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

log = logging.getLogger("trainsentry.producers")

CLIENT_ID = f"{DEFAULT_CLIENT_ID}-producer"
FIRST_BACKOFF_S = 0.5
# Room in a request for the fields of an event besides its largest array.
REQUEST_OVERHEAD_BYTES = 64 * 1024


def import_aiokafka() -> ModuleType:
    """The aiokafka module, imported now; a missing package is one line naming it."""
    try:
        return importlib.import_module("aiokafka")
    except ImportError as exc:
        raise ModuleNotFoundError(f"trainsentry: talking to Kafka needs the aiokafka package "
                                  f"(pip install aiokafka): {exc}", name="aiokafka") from None


class KafkaConnection:
    """One ``AIOKafkaProducer`` at a time, for the sender thread's loop.

    ``producer`` is the started producer, or ``None`` while connecting and once stopped;
    ``unreachable_since`` is when the first attempt failed (``clock()``), ``None`` until then.
    Both changes are followed by ``changed.notify()``. ``between_attempts`` runs after each failed
    attempt (the sender reports its losses there).
    """

    def __init__(self, settings: SenderSettings, options: KafkaClientOptions, close: CloseRequest,
                 changed: StateChanged, clock: Callable[[], float],
                 between_attempts: Callable[[], None] = lambda: None) -> None:
        self._producer_class = import_aiokafka().AIOKafkaProducer
        self.settings = settings
        self.options = options
        self.bootstrap_servers = options.bootstrap_servers
        self.producer: AIOKafkaProducer | None = None
        self.unreachable_since: float | None = None
        self._close = close
        self._changed = changed
        self._clock = clock
        self._between_attempts = between_attempts

    async def connect(self) -> AIOKafkaProducer | None:
        """A started producer; ``None`` once closing makes waiting for one pointless."""
        backoff_s = FIRST_BACKOFF_S
        while True:
            last_client_error_in_this_thread()  # an older one must not pass for this attempt's cause
            producer = self._new_producer()
            start = asyncio.ensure_future(producer.start())
            finished = await self._close.finishes_first(start)
            if not finished and self.unreachable_since is None:
                # Closing during the very first attempt: the broker may well be there, so what is
                # buffered gets until the deadline (a broker known to be down gets nothing).
                await asyncio.wait({start}, timeout=self._close.remaining_s())
                finished = start.done()
            if not finished:
                start.cancel()
                with contextlib.suppress(BaseException):
                    await start
                await self._stop_quietly(producer)
                return None
            error = start.exception()
            if error is None:
                if self.unreachable_since is not None:
                    log.warning("trainsentry: reached Kafka at %s; sending events", self.bootstrap_servers)
                self.producer = producer
                self._changed.notify()
                return producer
            await self._stop_quietly(producer)
            self._note_unreachable(error)
            if self._close.requested:
                return None
            self._between_attempts()
            await self._close.wait(backoff_s)
            if self._close.requested:
                return None
            backoff_s = min(backoff_s * 2, self.settings.reconnect_max_backoff_s)

    async def stop(self) -> None:
        """Deliver what the producer holds until the close deadline, then stop it."""
        producer = self.producer
        if producer is None:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.flush(), self._close.remaining_s())
        try:
            # stop() waits for batches still in flight; a vanished broker would keep it waiting.
            await asyncio.wait_for(producer.stop(), max(self._close.remaining_s(), 0.2))
        except Exception:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.client.close(), 0.5)
        self.producer = None
        self._changed.notify()

    def _new_producer(self) -> AIOKafkaProducer:
        s = self.settings
        return self._producer_class(
            bootstrap_servers=self.bootstrap_servers,
            acks=1,  # acks=0 is broken on Tansu; idempotence is unsupported there
            enable_idempotence=False,
            linger_ms=s.linger_ms,
            max_batch_size=s.max_batch_bytes,
            max_request_size=s.max_record_bytes + REQUEST_OVERHEAD_BYTES,
            compression_type=s.compression,
            request_timeout_ms=s.request_timeout_ms,
            **self.options.connection,  # security_protocol, ssl_context, sasl_*, client_id
        )

    @staticmethod
    async def _stop_quietly(producer: AIOKafkaProducer) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), 1.0)

    def _note_unreachable(self, exc: BaseException | None) -> None:
        reason = describe_connection_failure(exc)
        if self.unreachable_since is not None:
            log.debug("trainsentry: Kafka at %s still unreachable: %s", self.bootstrap_servers, reason)
            return
        self.unreachable_since = self._clock()
        self._changed.notify()
        s = self.settings
        log.warning(
            "trainsentry: cannot reach Kafka at %s (%s). Training goes on: events wait in a %d MiB "
            "buffer (the %s are dropped when it is full) and the sender keeps retrying.",
            self.bootstrap_servers, reason, s.buffer_bytes // (1024 * 1024), s.drop.value)


def describe_connection_failure(exc: BaseException | None) -> str:
    """Why a client of this thread could not connect, in one line.

    aiokafka raises "Unable to bootstrap" and logs the cause (a refused TLS handshake, a failed
    authentication) instead: that cause is preferred when it logged one. Neither names a secret.
    """
    cause = last_client_error_in_this_thread()
    shown = cause if cause is not None else exc
    if shown is None:
        return "no answer"
    text = " ".join(str(shown).split())
    if type(shown).__name__ not in text:
        text = f"{type(shown).__name__}: {text}" if text else type(shown).__name__
    return text if len(text) <= 300 else text[:297] + "..."
