"""The live part of the dashboard: what the collection gained, pushed to each open page.

Every :data:`TICK_SECONDS` the feed drains the collection's changes and queues one message per
subscriber: a runs page gets the runs table (when it changed, and at least every
:data:`REFRESH_SECONDS` so ages and statuses move on); a trial page gets that trial's new curves,
points and alerts with its summary. A subscriber that does not keep up (its queue is full) gets its
backlog replaced by one ``reset`` message, and reloads a snapshot: memory stays bounded whatever
the client does.

Messages are server-sent events: ``event: runs`` or ``event: trial``, one JSON object as data;
comments every :data:`HEARTBEAT_SECONDS` let the server notice a page that went away.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from trainsentry.consumers.runs import RunCollection
from trainsentry.consumers.runs.trial_record import TrialChanges

TICK_SECONDS = 0.25
REFRESH_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
QUEUE_MESSAGES = 64


def sse(event: str, payload: dict[str, Any]) -> bytes:
    """One server-sent event: its type and its JSON data on one line."""
    data = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return f"event: {event}\ndata: {data}\n\n".encode()


@dataclass(eq=False)
class Subscription:
    trial: str | None  # None: the runs page
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_MESSAGES))

    def offer(self, message: bytes) -> None:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(sse("trial" if self.trial else "runs", {"reset": True}))


class LiveFeed:
    """Fans the collection's changes out to the open pages."""

    def __init__(self, collection: RunCollection, clock: Callable[[], float] = time.time) -> None:
        self.collection = collection
        self.clock = clock
        self._subscriptions: set[Subscription] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    async def messages(self, trial: str | None) -> AsyncIterator[bytes]:
        """The messages of one page, from a ``hello`` on; ends when the consumer stops iterating."""
        subscription = Subscription(trial)
        self._subscriptions.add(subscription)
        try:
            yield sse("hello", {"trial": trial, "now": self.clock()})
            while True:
                try:
                    yield await asyncio.wait_for(subscription.queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield b": heartbeat\n\n"
        finally:
            self._subscriptions.discard(subscription)

    async def run(self, stop: asyncio.Event) -> None:
        last_refresh = 0.0
        while not stop.is_set():
            now = self.clock()
            refresh = now - last_refresh >= REFRESH_SECONDS
            if refresh:
                last_refresh = now
            self.tick(now, refresh)
            try:
                await asyncio.wait_for(stop.wait(), TICK_SECONDS)
            except TimeoutError:
                pass

    def tick(self, now: float, refresh: bool) -> None:
        """Drain the collection's changes and queue the messages they make."""
        runs_changed, changes = self.collection.drain_changes()
        if not self._subscriptions:
            return
        runs_message = None
        if runs_changed or refresh:
            runs_message = sse("runs", {"now": now, "runs": self.collection.summaries(now),
                                        "evicted": self.collection.evicted})
        trial_messages: dict[str, bytes] = {}  # one message per trial, however many pages show it
        for subscription in list(self._subscriptions):
            trial = subscription.trial
            if trial is None:
                if runs_message is not None:
                    subscription.offer(runs_message)
                continue
            if trial not in changes and not refresh:
                continue
            if trial not in trial_messages:
                trial_messages[trial] = self._trial_message(trial, changes.get(trial), now)
            subscription.offer(trial_messages[trial])

    def _trial_message(self, trial: str, changes: TrialChanges | None, now: float) -> bytes:
        record = self.collection.trials.get(trial)
        if record is None:
            return sse("trial", {"gone": True, "now": now})
        payload: dict[str, Any] = {"now": now, "summary": self.collection.summary(record, now)}
        if changes is not None:
            payload.update(series=changes.series, points=changes.points, alerts=changes.alerts,
                           reset=changes.reset)
        return sse("trial", payload)
