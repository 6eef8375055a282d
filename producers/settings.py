"""Settings shared by everything that sends from a training process.

Environment variable names and the defaults both sides share come from
:mod:`trainsentry.protocol.settings`; durations and sizes carry their unit in their name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from trainsentry.protocol.kafka_properties import KafkaProperties
from trainsentry.protocol.settings import ENV_WORKER, resolve_bootstrap_servers, resolve_topic_prefix

__all__ = ["DropPolicy", "SenderSettings", "default_worker"]


class DropPolicy(StrEnum):
    """Which events to give up when the buffer is full."""

    OLDEST = "oldest"  # keep the freshest window: the state rules care about is the current one
    NEWEST = "newest"  # keep the start of the run intact (initialisation checks look at steps < 10)


@dataclass(frozen=True)
class SenderSettings:
    """How a training process talks to Kafka.

    Every field has a default that suits a single training process; the buffer is the one setting
    that trades memory for resilience to a slow or absent broker.
    """

    bootstrap_servers: str | None = None
    """``host:port[,host:port]``; ``None``: ``$KAFKA_BOOTSTRAP_SERVERS``, else ``bootstrap.servers``
    of the Kafka properties, else ``localhost:9092``."""
    kafka_config: str | Path | None = None
    """A librdkafka-style properties file saying how to connect (TLS, SASL: see
    :mod:`trainsentry.protocol.kafka_properties`); ``None``: ``$TRAINSENTRY_KAFKA_CONFIG`` if set.
    ``KAFKA_*`` environment variables (``KAFKA_SASL_PASSWORD`` is ``sasl.password``) override it."""
    kafka_properties: Mapping[str, str] | None = field(default=None, repr=False)
    """Properties that override the file and the environment (``trainsentry tap -X key=value``).
    Left out of ``repr``: it may hold a password."""
    topic_prefix: str | None = None
    """``None``: see :func:`~trainsentry.protocol.settings.resolve_topic_prefix`."""
    buffer_bytes: int = 64 * 1024 * 1024
    """Events waiting for the broker, in bytes (array bytes plus a small estimate per event)."""
    drop: DropPolicy = DropPolicy.OLDEST
    linger_ms: int = 10
    """How long the first event after a quiet spell waits for the rest of its burst (one batch)."""
    max_batch_bytes: int = 1024 * 1024
    max_record_bytes: int = 16 * 1024 * 1024
    """A tensor whose bytes would exceed this is sent as reductions instead."""
    compression: str | None = None
    """``gzip``; ``lz4``, ``zstd`` and ``snappy`` need ``cramjam`` installed."""
    max_cpu_share: float = 0.25
    """At most this share of the time goes to encoding and sending (the sender shares the GIL with
    training); beyond it events wait in the buffer."""
    request_timeout_ms: int = 10_000
    """How long one request to the broker may take before it counts as failed."""
    close_timeout_s: float = 5.0
    """How long ``close()`` (and interpreter exit) waits for buffered events to be delivered."""
    report_interval_s: float = 60.0
    """Dropped events are reported through ``logging`` at most once per interval."""
    reconnect_max_backoff_s: float = 30.0
    """The longest wait between two attempts to reach the broker (it doubles from 0.5 s up to this)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "drop", DropPolicy(self.drop))
        if self.kafka_properties is not None:  # a copy: the caller's dict may change later
            object.__setattr__(self, "kafka_properties", dict(self.kafka_properties))
        if self.buffer_bytes <= 0:
            raise ValueError(f"buffer_bytes must be > 0, got {self.buffer_bytes}")
        if self.linger_ms < 0:
            raise ValueError(f"linger_ms must be >= 0, got {self.linger_ms}")
        if not 0 < self.max_cpu_share <= 1:
            raise ValueError(f"max_cpu_share must be in (0, 1], got {self.max_cpu_share}")
        if self.request_timeout_ms <= 0:
            raise ValueError(f"request_timeout_ms must be > 0, got {self.request_timeout_ms}")
        if self.close_timeout_s < 0:
            raise ValueError(f"close_timeout_s must be >= 0, got {self.close_timeout_s}")
        if self.reconnect_max_backoff_s <= 0:
            raise ValueError(f"reconnect_max_backoff_s must be > 0, got {self.reconnect_max_backoff_s}")

    def load_kafka_properties(self) -> KafkaProperties:
        """The file (``kafka_config``, else ``$TRAINSENTRY_KAFKA_CONFIG``), then ``KAFKA_*``
        variables, then ``kafka_properties``; :class:`~trainsentry.protocol.kafka_properties.KafkaConfigError`
        names a property that cannot be used."""
        return KafkaProperties.load(self.kafka_config, self.kafka_properties)

    def resolved_bootstrap_servers(self, properties: KafkaProperties | None = None) -> str:
        """``bootstrap_servers``, else ``bootstrap.servers`` of the properties (where
        ``$KAFKA_BOOTSTRAP_SERVERS`` overrides the file), else the default."""
        if self.bootstrap_servers:
            return self.bootstrap_servers
        properties = properties if properties is not None else self.load_kafka_properties()
        return resolve_bootstrap_servers(properties.get("bootstrap.servers"))

    def resolved_topic_prefix(self) -> str:
        return resolve_topic_prefix(self.topic_prefix)


def default_worker() -> str:
    """``$TRAINSENTRY_WORKER``, else the torch.distributed rank when a process group is
    initialised, else ``$RANK``, else ``"0"``."""
    if os.environ.get(ENV_WORKER):
        return os.environ[ENV_WORKER]
    # Only ask torch if the script already imported it: importing torch here would cost seconds.
    dist = sys.modules.get("torch.distributed")
    try:
        if dist is not None and dist.is_available() and dist.is_initialized():
            return str(dist.get_rank())
    except Exception:  # a half-initialised process group must not break the caller
        pass
    return os.environ.get("RANK") or "0"
