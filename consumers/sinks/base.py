"""The sink port: where a driver's outputs go (alerts, metrics, dead letters).

A sink's :meth:`Sink.write_batch` returns once what the sink must keep of a batch is durable
(acknowledged by the broker, written to the file); only then does the driver advance its source.
The driver owns the delivery guarantee: it retries a sink whose failure :meth:`Sink.retriable`
calls retriable, until it is asked to stop, and stops on any other failure. A sink does not retry
by itself, and may receive the same batch again after a failure (at least once; alert ids make
the repeats recognisable).
"""

from __future__ import annotations

from collections.abc import Sequence

from trainsentry.consumers.records import DeadLetter
from trainsentry.protocol import Event


class Sink:
    """One destination of a driver's outputs: a subclass implements :meth:`write_batch`, the
    other methods are optional."""

    async def start(self) -> None:
        """Connect or open; called once, in the running event loop, before any batch."""

    async def stop(self, complete: bool) -> None:
        """Release what :meth:`start` took; ``complete`` is false when the run ended in an error
        (a file sink then leaves the previous file in place)."""

    async def write_batch(self, outputs: Sequence[Event], dead_letters: Sequence[DeadLetter]) -> None:
        """Keep what this sink keeps of ``outputs`` (metric and alert events, in order) and
        ``dead_letters``; return once it is durable, raise if it was refused."""
        raise NotImplementedError

    def retriable(self, error: BaseException) -> bool:
        """Whether writing the same batch again may succeed (a broker briefly away: yes)."""
        return False
