"""The source port: where a driver's input comes from, in batches, and how its position advances.

A source hands out :class:`Batch` es. The driver evaluates a batch, gives what it produced to every
sink, and only then calls :meth:`Source.commit`: a source's position never moves past an input
whose outputs are not kept yet (at least once).
"""

from __future__ import annotations

import contextlib
from collections.abc import Hashable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from trainsentry.consumers.records import KafkaRecord
from trainsentry.protocol import Event


@dataclass(slots=True)
class Part:
    """The input of one lane of a source (a Kafka partition, a replay file) within a batch.

    ``records`` are raw: the driver decodes them, and one that is not an event becomes a dead
    letter. ``events`` are decoded already (a replay file's reader validates as it reads). Records
    whose offset is below ``rebuild_below`` only rebuild state: what they produce was delivered
    before, and is dropped.
    """

    lane: Hashable
    records: Sequence[KafkaRecord] = ()
    events: Sequence[Event] = ()
    rebuild_below: int | None = None

    @property
    def size(self) -> int:
        return len(self.records) + len(self.events)


@dataclass(slots=True)
class Batch:
    """What one fetch returned, lane by lane."""

    parts: list[Part] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)


class Source:
    """Batches of input for a driver: a subclass implements :meth:`fetch`, the other methods are
    optional.

    Bounded sources (a file, a topic read to its end) return ``None`` from :meth:`fetch` once they
    are exhausted; a consumer group never does.
    """

    async def start(self) -> None:
        """Connect or open; called once, in the running event loop."""

    async def stop(self) -> None:
        """Release what :meth:`start` took; a commit still travelling is settled first."""

    async def fetch(self) -> Batch | None:
        """The next batch (empty when nothing came in time), or ``None`` when there is no more."""
        raise NotImplementedError

    def hold(self, batch: Batch) -> AbstractAsyncContextManager[Batch]:
        """Keep ``batch``'s lanes while it is evaluated, delivered and committed.

        Yields what of the batch is still this source's to process (a consumer group may have
        handed partitions to another member meanwhile).
        """
        return contextlib.nullcontext(batch)

    async def commit(self, batch: Batch) -> None:
        """Advance past ``batch``: every sink keeps its outputs. Commits take effect in order."""
