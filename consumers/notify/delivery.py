"""Each destination delivers on its own: its own queue, retries with exponential backoff, give-up.

A destination that fails never holds the others back: each has a worker that takes its messages in
order. A failed send is retried after ``first_backoff_seconds``, doubling up to
``max_backoff_seconds``; a message still failing ``give_up_after_seconds`` after it was queued is
given up, with every queued message as old as that (they would only fail in turn). Delivered,
failed attempts and given up are counted per destination. A failure streak is logged once when it
starts (with the reason, secrets removed), once at its first give-up, and once when the destination
delivers again; the attempts in between are DEBUG.

Backoff (seconds) after the n-th failure in a row, defaults:

>>> [RetryPolicy().backoff(n) for n in (1, 2, 3, 7, 8)]
[1.0, 2.0, 4.0, 60.0, 60.0]
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .checkpoints import Checkpoint
from .destinations import Destination
from .message import Notification

log = logging.getLogger("trainsentry.notify")
QUEUE_LIMIT = 10_000  # messages waiting for one destination before the notifier stops reading


@dataclass(frozen=True)
class RetryPolicy:
    first_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0
    give_up_after_seconds: float = 3600.0

    def backoff(self, failures: int) -> float:
        """Wait after the ``failures``-th failure in a row: first x 2^(failures-1), capped."""
        return min(self.max_backoff_seconds, self.first_backoff_seconds * 2.0 ** max(0, failures - 1))


@dataclass
class DeliveryCounts:
    delivered: int = 0
    failed_attempts: int = 0
    given_up: int = 0


@dataclass(eq=False)
class Parcel:
    """One message for one destination, and the checkpoint waiting for it."""

    notification: Notification
    checkpoint: Checkpoint
    queued_at: float


@dataclass
class _Streak:
    failures: int = 0
    given_up: int = 0
    started_at: float = 0.0
    give_up_logged: bool = False


class DestinationWorker:
    """Delivers one destination's messages in order until :meth:`close`; see the module doc."""

    def __init__(self, destination: Destination, policy: RetryPolicy = RetryPolicy(), *,
                 on_finished: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 queue_limit: int = QUEUE_LIMIT) -> None:
        self.destination = destination
        self.policy = policy
        self.counts = DeliveryCounts()
        self._on_finished = on_finished
        self._clock = clock
        self._sleep = sleep
        self._limit = queue_limit
        self._queue: deque[Parcel] = deque()
        self._changed = asyncio.Condition()
        self._closed = False
        self._busy = False
        self._streak = _Streak()

    @property
    def idle(self) -> bool:
        """Nothing queued and nothing being sent."""
        return not self._queue and not self._busy

    @property
    def failing(self) -> bool:
        return self._streak.failures > 0

    async def put(self, notification: Notification, checkpoint: Checkpoint) -> None:
        """Queue a message; waits while the queue is full (the notifier then stops reading)."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self._queue) < self._limit or self._closed)
            self._queue.append(Parcel(notification, checkpoint, self._clock()))
            self._changed.notify_all()

    async def close(self) -> None:
        """Let :meth:`run` return once the queue is empty."""
        async with self._changed:
            self._closed = True
            self._changed.notify_all()

    async def wait_idle(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.idle)

    async def run(self) -> None:
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: self._queue or self._closed)
                if not self._queue:
                    return
                parcel = self._queue[0]
                self._busy = True
            try:
                await self._deliver(parcel)
            finally:
                async with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    async def _deliver(self, parcel: Parcel) -> None:
        name = self.destination.name
        while True:
            reason = await asyncio.to_thread(self.destination.send, parcel.notification)
            if reason is None:
                self.counts.delivered += 1
                self._finish(parcel)
                streak = self._streak
                if streak.failures:
                    log.warning("%s: delivering again after %d failed attempt(s) over %.0fs; %d "
                                "message(s) given up meanwhile", name, streak.failures,
                                self._clock() - streak.started_at, streak.given_up)
                    self._streak = _Streak()
                return
            self.counts.failed_attempts += 1
            streak = self._streak
            streak.failures += 1
            now = self._clock()
            if streak.failures == 1:
                streak.started_at = now
                log.warning("%s: delivery failed: %s; retrying with backoff (up to %gs), giving a "
                            "message up %gs after it was queued", name, reason,
                            self.policy.max_backoff_seconds, self.policy.give_up_after_seconds)
            else:
                log.debug("%s: attempt %d failed: %s", name, streak.failures, reason)
            if now >= parcel.queued_at + self.policy.give_up_after_seconds:
                given_up = self._give_up_expired(now)
                streak.given_up += given_up
                if not streak.give_up_logged:
                    streak.give_up_logged = True
                    log.error("%s: gave up %d message(s) after %gs of failed delivery (counted; further "
                              "give-ups in this streak are counted, not logged)", name, given_up,
                              self.policy.give_up_after_seconds)
                return
            await self._sleep(self.policy.backoff(streak.failures))

    def _give_up_expired(self, now: float) -> int:
        """Give up every queued message (the one in hand first) whose time is up."""
        kept: deque[Parcel] = deque()
        given_up = 0
        for parcel in self._queue:
            if now >= parcel.queued_at + self.policy.give_up_after_seconds:
                given_up += 1
                self._finish(parcel, delivered=False)
            else:
                kept.append(parcel)
        self._queue = kept
        self.counts.given_up += given_up
        return given_up

    def _finish(self, parcel: Parcel, delivered: bool = True) -> None:
        if delivered:
            self._queue.popleft()
        parcel.checkpoint.finish_one()
        self._on_finished()


@dataclass
class Fanout:
    """Every destination's worker; a message is queued to all of them."""

    workers: list[DestinationWorker] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.workers)

    async def put(self, notification: Notification, checkpoint: Checkpoint) -> None:
        for worker in self.workers:
            await worker.put(notification, checkpoint)

    @property
    def idle(self) -> bool:
        return all(worker.idle for worker in self.workers)
