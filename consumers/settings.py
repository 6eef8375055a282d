"""Settings of the sidecar's Kafka edges (the rules have their own configuration file)."""

from __future__ import annotations

from dataclasses import dataclass, field

from trainsentry.protocol import Topics
from trainsentry.protocol.settings import DEFAULT_CLIENT_ID

DEFAULT_GROUP = "trainsentry-sidecar"


@dataclass(frozen=True)
class KafkaSettings:
    """How the sidecar talks to Kafka.

    The defaults suit the embedded Tansu broker too: it does not wake a waiting fetch when data
    arrives, so ``fetch_max_wait_ms`` is the delivery latency, and a rebalance round takes about
    ``session_timeout_ms / 2``.
    """

    bootstrap_servers: str
    topics: Topics = field(default_factory=Topics)
    group_id: str = DEFAULT_GROUP
    client_id: str = DEFAULT_CLIENT_ID
    fetch_max_wait_ms: int = 20
    max_batch_records: int = 10_000
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    request_timeout_ms: int = 30_000
    max_request_bytes: int = 64 * 1024 * 1024
    linger_ms: int = 0  # the sink flushes right after each batch anyway: lingering only adds latency
