"""How a client of the training side reaches the cluster: where it is and how it authenticates.

Resolved once, when a publisher, a follower or the tap is created, on the caller's thread, from
:class:`~.settings.SenderSettings` (``kafka_config``, ``$TRAINSENTRY_KAFKA_CONFIG``, ``KAFKA_*``
variables, ``kafka_properties``: see :mod:`trainsentry.protocol.kafka_properties`).

A security configuration that cannot be used (an unknown property, a file that is missing, a
certificate or key that does not load, a SASL mechanism without its username) raises
:class:`~trainsentry.protocol.kafka_properties.KafkaConfigError` there: one line naming the
property, never a secret. That is the one Kafka problem that reaches training code, and only at
start: it is a mistake in what the user wrote, it does not fix itself, and a run meant to be
watched over TLS must not run for days unwatched because of a typo. Everything that happens later
on the network (a broker that does not answer, refuses the TLS handshake or the credentials) is
reported through ``logging`` while training goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trainsentry.protocol.kafka_properties import KafkaConfigError

from .settings import SenderSettings

__all__ = ["KafkaClientOptions", "KafkaConfigError"]


@dataclass(frozen=True)
class KafkaClientOptions:
    """``bootstrap_servers`` and the aiokafka keyword arguments every client of one process uses.

    ``connection`` holds ``security_protocol``, ``ssl_context``, ``sasl_*`` and ``client_id``;
    it is left out of ``repr`` (it may hold a password).
    """

    bootstrap_servers: str
    connection: Mapping[str, Any] = field(repr=False)

    @property
    def security_protocol(self) -> str:
        return self.connection["security_protocol"]

    @classmethod
    def resolve(cls, settings: SenderSettings, client_id: str) -> KafkaClientOptions:
        """Read the properties now; ``client_id`` unless ``client.id`` says otherwise."""
        properties = settings.load_kafka_properties()
        connection = {"client_id": client_id, **properties.client_kwargs()}
        return cls(settings.resolved_bootstrap_servers(properties), connection)
