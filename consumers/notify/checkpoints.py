"""What may be committed: a partition's position and throttle state, once every message before it
was delivered or given up by every destination.

Each batch (or summary flush) of a partition opens a :class:`Checkpoint` that counts the deliveries
it waits for (messages x destinations). Destinations finish them in their own time and order; the
checkpoints of a partition become ready in the order they were opened, so a fast destination never
makes a slow one's messages look done.

>>> log = CheckpointLog()
>>> first = log.open("p0", offset=5, state={"n": 1}, deliveries=2)
>>> second = log.open("p0", offset=9, state=None, deliveries=0)
>>> log.take_ready()
{}
>>> first.finish_one(); first.finish_one()
>>> ready = log.take_ready()["p0"]
>>> ready.offset, ready.state
(9, {'n': 1})
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any


@dataclass(eq=False)
class Checkpoint:
    """A partition's position (``offset``: the next one to read; ``None``: unchanged) and throttle
    state (``None``: unchanged) after one batch, and how many deliveries it still waits for."""

    partition: Hashable
    offset: int | None
    state: dict[str, Any] | None
    pending: int

    def finish_one(self) -> None:
        """One message reached one destination, or was given up there."""
        self.pending -= 1

    @property
    def done(self) -> bool:
        return self.pending <= 0


@dataclass(frozen=True)
class Ready:
    """The newest position and state of a partition that may now be kept."""

    offset: int | None
    state: dict[str, Any] | None


class CheckpointLog:
    """The open checkpoints, per partition, in the order they were opened."""

    def __init__(self) -> None:
        self._open: dict[Hashable, deque[Checkpoint]] = {}

    def open(self, partition: Hashable, offset: int | None, state: dict[str, Any] | None,
             deliveries: int) -> Checkpoint:
        checkpoint = Checkpoint(partition, offset, state, deliveries)
        self._open.setdefault(partition, deque()).append(checkpoint)
        return checkpoint

    def take_ready(self) -> dict[Hashable, Ready]:
        """Per partition, the newest of its leading checkpoints that are done (removed from the log)."""
        ready: dict[Hashable, Ready] = {}
        for partition, queue in list(self._open.items()):
            offset = state = None
            taken = False
            while queue and queue[0].done:
                checkpoint = queue.popleft()
                taken = True
                offset = checkpoint.offset if checkpoint.offset is not None else offset
                state = checkpoint.state if checkpoint.state is not None else state
            if taken and (offset is not None or state is not None):
                ready[partition] = Ready(offset, state)
            if not queue:
                del self._open[partition]
        return ready

    def waiting(self, partition: Hashable | None = None) -> int:
        """Checkpoints not yet done (of one partition, or of all)."""
        if partition is not None:
            return len(self._open.get(partition, ()))
        return sum(len(queue) for queue in self._open.values())

    def drop(self, partition: Hashable) -> None:
        """Forget a partition's checkpoints (it went to another member of the group)."""
        self._open.pop(partition, None)
