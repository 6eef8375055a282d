"""Keep aiokafka from flooding a training script's console while the broker is away.

aiokafka logs an error for every failed connection attempt, several a second while a broker is
down. trainsentry's own threads mark themselves; from those threads, each distinct aiokafka warning
or error passes at most once per interval (trainsentry's own messages say what it means for
training). Records from every other thread, e.g. an application's own Kafka clients, pass
untouched.

aiokafka says why a connection failed (a TLS handshake refused, an authentication failure) only in
such a record, and raises "Unable to bootstrap" to its caller: the newest exception it logged from
a watched thread is kept, so that trainsentry's one warning can give the reason.
"""

from __future__ import annotations

import logging
import threading
import time


class _QuietSenderThreads(logging.Filter):
    """Rate-limits aiokafka's warnings and errors logged from the threads it watches."""

    LOGGERS = ("aiokafka", "aiokafka.conn", "aiokafka.cluster", "aiokafka.producer.producer",
               "aiokafka.producer.sender", "aiokafka.consumer.consumer", "aiokafka.consumer.fetcher")

    def __init__(self, interval: float = 60.0) -> None:
        super().__init__()
        self.interval = interval
        self._threads: set[int] = set()
        self._last_seen: dict[tuple[str, str], float] = {}
        self._last_error: dict[int, BaseException] = {}
        self._installed = False

    def watch_current_thread(self) -> None:
        if not self._installed:
            for name in self.LOGGERS:
                logging.getLogger(name).addFilter(self)
            self._installed = True
        self._threads.add(threading.get_ident())

    def forget_current_thread(self) -> None:
        self._threads.discard(threading.get_ident())
        self._last_error.pop(threading.get_ident(), None)

    def take_last_error(self) -> BaseException | None:
        return self._last_error.pop(threading.get_ident(), None)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread not in self._threads or record.levelno < logging.WARNING:
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        errors = [arg for arg in args if isinstance(arg, BaseException)]
        if errors:
            self._last_error[record.thread] = errors[-1]
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last = self._last_seen.get(key)
        if last is not None and now - last < self.interval:
            return False
        self._last_seen[key] = now
        return True


_AIOKAFKA_NOISE = _QuietSenderThreads()


def quiet_aiokafka_in_this_thread() -> None:
    """Rate-limit aiokafka's warnings and errors logged from the calling (trainsentry) thread."""
    _AIOKAFKA_NOISE.watch_current_thread()


def unquiet_aiokafka_in_this_thread() -> None:
    _AIOKAFKA_NOISE.forget_current_thread()


def last_client_error_in_this_thread() -> BaseException | None:
    """The newest exception aiokafka logged from this (watched) thread since the last call, if any."""
    return _AIOKAFKA_NOISE.take_last_error()
