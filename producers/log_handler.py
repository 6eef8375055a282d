"""A ``logging.Handler`` that publishes log records as ``log`` events.

For scripts that log through :mod:`logging` and do not run under ``trainsentry tap``::

    handler = TrainsentryLogHandler(publisher=hook.publisher)   # share the hook's trial and sender
    logging.getLogger().addHandler(handler)

Each formatted record is split into lines by the tap's rule, one event per line, on the stream
given (``stderr`` by default, where ``logging`` writes). Under the tap, the same lines already
reach Kafka from the captured output; do not publish them twice for the same trial, worker and
stream (the sidecar would count the second copies as redelivered lines).
"""

from __future__ import annotations

import logging
import os

from trainsentry.protocol.settings import ENV_TRIAL

from .lines import split_lines
from .publisher import TensorPublisher
from .settings import SenderSettings

# Records of the Kafka client, and of trainsentry's own sending, say something about the path to
# Kafka: sending them down that path helps nobody and, when it is slow, feeds on itself.
_SKIPPED_LOGGERS = ("aiokafka", "trainsentry.producers")


class TrainsentryLogHandler(logging.Handler):
    """Publishes each record, formatted, as ``log`` events; never raises into the logging call.

    Without ``publisher``, one is made from the other arguments: a Kafka security configuration
    that cannot be used raises from the constructor, as for :class:`~.publisher.TensorPublisher`.
    """

    def __init__(self, trial: str | None = None, *, stream: str = "stderr",
                 level: int = logging.NOTSET, publisher: TensorPublisher | None = None,
                 worker: str | None = None, bootstrap_servers: str | None = None,
                 topic_prefix: str | None = None, settings: SenderSettings | None = None) -> None:
        super().__init__(level)
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream must be 'stdout' or 'stderr', got {stream!r}")
        self.stream = stream
        self._owns_publisher = publisher is None
        if publisher is None:
            trial = trial or os.environ.get(ENV_TRIAL)
            if not trial:
                raise ValueError(f"give a trial (or a publisher), or set ${ENV_TRIAL}")
            publisher = TensorPublisher(trial, worker=worker, bootstrap_servers=bootstrap_servers,
                                        topic_prefix=topic_prefix, settings=settings)
        self.publisher = publisher

    def filter(self, record: logging.LogRecord) -> bool:
        if any(record.name == name or record.name.startswith(name + ".") for name in _SKIPPED_LOGGERS):
            return False
        return super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            for line in split_lines(self.format(record)) or [""]:
                self.publisher.log_line(line, stream=self.stream)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        try:
            if self._owns_publisher:
                self.publisher.close()
        finally:
            super().close()
