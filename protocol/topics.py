"""The topic names, all under one prefix (docs/protocol.md, "Topics").

>>> Topics("team").alerts
'team.alerts'
>>> Topics.from_env(environ={"TRAINSENTRY_TOPIC_PREFIX": "x"}).tensors
'x.tensors'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .settings import DEFAULT_TOPIC_PREFIX, resolve_topic_prefix


@dataclass(frozen=True)
class Topics:
    """The six topics of one deployment: inputs (tensors, logs), outputs (metrics, alerts, dead
    letters) and the sidecar's own snapshots of its state."""

    prefix: str = DEFAULT_TOPIC_PREFIX

    @classmethod
    def from_env(cls, prefix: str | None = None, environ: Mapping[str, str] = os.environ) -> Topics:
        """``prefix``, else ``$TRAINSENTRY_TOPIC_PREFIX``, else the default."""
        return cls(resolve_topic_prefix(prefix, environ))

    @property
    def tensors(self) -> str:
        return f"{self.prefix}.tensors"

    @property
    def logs(self) -> str:
        return f"{self.prefix}.logs"

    @property
    def metrics(self) -> str:
        return f"{self.prefix}.metrics"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}.alerts"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}.deadletter"

    @property
    def snapshots(self) -> str:
        return f"{self.prefix}.snapshots"

    def all(self) -> tuple[str, ...]:
        return (self.tensors, self.logs, self.metrics, self.alerts, self.deadletter, self.snapshots)
