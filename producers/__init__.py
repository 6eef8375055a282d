"""The training side of trainsentry: what a training process sends, and how.

- :class:`TensorPublisher`: publish scalars, arrays and log lines, framework-free.
- :class:`TrainsentryHook` (``trainsentry.producers.torch_hook``, needs PyTorch): hook a model.
- :class:`TrainsentryLogHandler`: publish ``logging`` records.
- :class:`AlertFollower`: follow this trial's alerts, to stop a doomed run early.
- :class:`SenderSettings`: how to reach Kafka (``kafka_config`` for TLS and SASL) and how much to buffer.
- ``trainsentry tap`` (:mod:`.tap`): run a command and publish its output lines.

Importing this package imports neither PyTorch (``TrainsentryHook`` is loaded on first use) nor
the Kafka client (aiokafka is imported when a publisher or follower starts one).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .alerts import AlertFollower, FollowerStats
from .delivery_ledger import SenderStats
from .log_handler import TrainsentryLogHandler
from .publisher import TensorPublisher
from .save_config import SaveConfig, SavePlan
from .settings import DropPolicy, SenderSettings

if TYPE_CHECKING:
    from .torch_hook import TrainsentryHook

__all__ = [
    "AlertFollower", "DropPolicy", "FollowerStats", "SaveConfig", "SavePlan", "SenderSettings", "SenderStats",
    "TensorPublisher", "TrainsentryHook", "TrainsentryLogHandler",
]


def __getattr__(name: str) -> Any:
    if name == "TrainsentryHook":
        from .torch_hook import TrainsentryHook
        return TrainsentryHook
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
