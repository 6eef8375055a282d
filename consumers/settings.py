"""Settings of the sidecar: its Kafka edges and its live loop (the rules have their own file).

The command line's defaults are these fields' defaults (``trainsentry run --help`` shows them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trainsentry.protocol import Topics
from trainsentry.protocol.settings import DEFAULT_CLIENT_ID

DEFAULT_GROUP = "trainsentry-sidecar"
DELIVERY_RETRY_SECONDS = 1.0  # between attempts to deliver a batch a sink refused retriably
DEFAULT_METRICS_BIND = "127.0.0.1"  # /metrics and the probes: this machine only, unless told


@dataclass(frozen=True)
class KafkaSettings:
    """How the sidecar talks to Kafka.

    The defaults suit the embedded Tansu broker too: it does not wake a waiting fetch when data
    arrives, so ``fetch_max_wait_ms`` is the delivery latency, and a rebalance round takes about
    ``session_timeout_ms / 2``. 6 s is the shortest session Apache Kafka accepts by default
    (``group.min.session.timeout.ms``); a slow coordinator, or batches that keep the loop busy for
    seconds, want a longer one.

    ``connection`` holds the aiokafka arguments that say how to authenticate
    (``security_protocol``, ``ssl_context``, ``sasl_*``, and ``client_id`` when the Kafka
    properties set ``client.id``), resolved once from the Kafka properties
    (:mod:`trainsentry.protocol.kafka_properties`); it is left out of ``repr``, since it may hold a
    password. Every client is made with :meth:`client_kwargs`.
    """

    bootstrap_servers: str
    topics: Topics = field(default_factory=Topics)
    group_id: str = DEFAULT_GROUP
    client_id: str = DEFAULT_CLIENT_ID
    fetch_max_wait_ms: int = 20
    max_batch_records: int = 10_000
    session_timeout_ms: int = 6_000
    heartbeat_interval_ms: int = 2_000
    # How long the coordinator waits for every member to rejoin in a rebalance (None: the session
    # timeout, aiokafka's default).
    rebalance_timeout_ms: int | None = None
    # Static membership: a member that comes back under the same id within the session timeout
    # takes its partitions back without a rebalance. One id per sidecar, stable across restarts.
    group_instance_id: str | None = None
    request_timeout_ms: int = 30_000
    max_request_bytes: int = 64 * 1024 * 1024
    linger_ms: int = 0  # the sink flushes right after each batch anyway: lingering only adds latency
    connection: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def client_kwargs(self, role: str | None = None) -> dict[str, Any]:
        """What every aiokafka client of these settings is made with: the cluster, the client id
        (``client.id`` of the properties, else ``<client_id>-<role>``) and the security arguments.

        >>> KafkaSettings("k:9092").client_kwargs("sink")
        {'bootstrap_servers': 'k:9092', 'client_id': 'trainsentry-sink'}
        >>> KafkaSettings("k:9092", connection={"client_id": "team-a"}).client_kwargs("sink")["client_id"]
        'team-a'
        """
        client_id = f"{self.client_id}-{role}" if role else self.client_id
        return {"bootstrap_servers": self.bootstrap_servers, "client_id": client_id, **self.connection}

    @property
    def security_protocol(self) -> str:
        return self.connection.get("security_protocol", "PLAINTEXT")


@dataclass(frozen=True)
class SidecarOptions:
    """How the live loop behaves beyond Kafka settings."""

    poll_timeout_ms: int = 200
    idle_trial_seconds: float | None = 3600.0  # release a trial's state after this long without events
    # After every worker's end marker, how long a trial's last events on the other topic may take.
    ended_trial_grace_seconds: float = 10.0
    # After a trial's release, how long its objective gauges stay for the last Prometheus scrapes.
    objective_retention_seconds: float = 300.0
    delivery_retry_seconds: float = DELIVERY_RETRY_SECONDS
    # Snapshots of each owned partition's state (trainsentry.consumers.snapshots), so that a member
    # gaining a partition reads only the records after the newest one: taken once a partition has
    # evaluated this many records since its last snapshot, or after this many seconds.
    snapshots: bool = True
    snapshot_interval_records: int = 50_000
    snapshot_interval_seconds: float = 60.0
