"""What became of every event the sender took from its buffer: the counters behind :class:`SenderStats`.

An event the training thread submitted is, at any moment, in exactly one place: waiting in the
buffer, dropped by the buffer's policy (counted by the buffer), or one of

- ``in_hand``: taken from the buffer, not yet handed to the Kafka client nor given up;
- ``failed``: taken and given up before the client had it (encoding error, no partition, shutdown);
- ``handed``: given to the client, then settled by its delivery callback as ``delivered`` or
  ``delivery_failed``; ``unsettled = handed - delivered - delivery_failed`` still wait for one.

So ``sent + lost`` is everything accepted once the sender has stopped (``lost`` then includes
the unsettled ones: no acknowledgement will come for them).

>>> ledger = DeliveryLedger()
>>> ledger.take(5); ledger.fail(1); ledger.hand_over(4)
>>> ledger.stats(dropped=2, buffered_bytes=0, connected=True)
SenderStats(sent=0, dropped=2, failed=1, buffered_bytes=0, connected=True)
>>> ledger.on_delivered(4); ledger.stats(dropped=2, buffered_bytes=0, connected=True).lost
3
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(frozen=True)
class SenderStats:
    """Counters of one sender. ``lost`` is what was given up, for whatever reason."""

    sent: int
    """Acknowledged by the broker."""
    dropped: int
    """Given up on the training side because the buffer was full (the drop policy chose them)."""
    failed: int
    """Taken from the buffer but not delivered: encoding error, broker error, timeout, shutdown."""
    buffered_bytes: int
    connected: bool
    """Whether the producer is up (it may still be waiting for a broker that went away)."""

    @property
    def lost(self) -> int:
        return self.dropped + self.failed


class DeliveryLedger:
    """The sender thread's counters; only the sender thread writes them, any thread reads them."""

    def __init__(self) -> None:
        self.in_hand = 0          # taken from the buffer, not yet handed or failed
        self.failed = 0           # taken from the buffer, never handed to the client
        self.handed = 0           # handed to the client; settled by a delivery callback
        self.delivered = 0
        self.delivery_failed = 0
        self.stopped = False      # the sender thread has finished: nothing unsettled will settle

    # --- the sender thread's side ---------------------------------------------------------------

    def take(self, count: int) -> None:
        """``count`` items were taken from the (otherwise settled) buffer."""
        self.in_hand = count

    def fail(self, count: int) -> None:
        """``count`` items in hand were given up before the client had them."""
        self.in_hand -= count
        self.failed += count

    def hand_over(self, count: int) -> None:
        """``count`` items in hand went to the client; :meth:`on_delivery` settles them."""
        self.in_hand -= count
        self.handed += count

    def give_up(self, waiting: int) -> None:
        """At shutdown: what is in hand, and ``waiting`` items the buffer still held, are lost."""
        self.failed += self.in_hand + waiting
        self.in_hand = 0

    def on_delivery(self, count: int, delivery: asyncio.Future) -> None:
        """The client's callback for a batch of ``count`` items."""
        if delivery.cancelled() or delivery.exception() is not None:
            self.delivery_failed += count
        else:
            self.on_delivered(count)

    def on_delivered(self, count: int) -> None:
        self.delivered += count

    # --- readings ---------------------------------------------------------------------------------

    def unsettled(self) -> int:
        """Handed to the client and neither acknowledged nor failed yet."""
        return self.handed - self.delivered - self.delivery_failed

    def not_delivered(self) -> int:
        """Taken from the buffer and given up (``failed``); once stopped, also the unacknowledged."""
        unacknowledged = self.unsettled() if self.stopped else 0
        return self.failed + self.delivery_failed + unacknowledged

    def lost(self, dropped: int) -> int:
        """Everything given up so far, with ``dropped`` the buffer's count of policy drops."""
        return dropped + self.not_delivered()

    def stats(self, *, dropped: int, buffered_bytes: int, connected: bool) -> SenderStats:
        return SenderStats(sent=self.delivered, dropped=dropped, failed=self.not_delivered(),
                           buffered_bytes=buffered_bytes, connected=connected)
