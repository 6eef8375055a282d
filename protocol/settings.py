"""Names and defaults both sides share: environment variables, the cluster, the topic prefix.

Defined once here; the training side's :class:`~trainsentry.producers.settings.SenderSettings`, the
sidecar's :class:`~trainsentry.consumers.settings.KafkaSettings` and every command read them.

>>> resolve_topic_prefix(None, environ={ENV_TOPIC_PREFIX: "team"})
'team'
>>> resolve_bootstrap_servers(None, environ={})
'localhost:9092'
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENV_BOOTSTRAP = "KAFKA_BOOTSTRAP_SERVERS"
ENV_TOPIC_PREFIX = "TRAINSENTRY_TOPIC_PREFIX"
ENV_TRIAL = "TRAINSENTRY_TRIAL"
ENV_WORKER = "TRAINSENTRY_WORKER"

DEFAULT_BOOTSTRAP = "localhost:9092"
DEFAULT_TOPIC_PREFIX = "trainsentry"
DEFAULT_CLIENT_ID = "trainsentry"


def resolve_bootstrap_servers(given: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """``given``, else ``$KAFKA_BOOTSTRAP_SERVERS``, else :data:`DEFAULT_BOOTSTRAP`."""
    return given or environ.get(ENV_BOOTSTRAP) or DEFAULT_BOOTSTRAP


def resolve_topic_prefix(given: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """``given``, else ``$TRAINSENTRY_TOPIC_PREFIX``, else :data:`DEFAULT_TOPIC_PREFIX`."""
    return given or environ.get(ENV_TOPIC_PREFIX) or DEFAULT_TOPIC_PREFIX
