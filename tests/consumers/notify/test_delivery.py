"""Delivery to one destination against a real local HTTP server: retries with exponential backoff,
give-up, counts, one log line per failure streak. The clock and the waits are given, so nothing
here depends on how fast the machine is."""

from __future__ import annotations

import logging

import pytest

from tests.consumers.notify.receivers import WebhookReceiver
from trainsentry.consumers.notify.checkpoints import CheckpointLog
from trainsentry.consumers.notify.delivery import DestinationWorker, RetryPolicy
from trainsentry.consumers.notify.destinations import parse_destinations
from trainsentry.consumers.notify.message import Notification
from trainsentry.consumers.notify.severity import Severity


class GivenTime:
    """A clock that moves only when the worker waits: each wait is recorded, then taken at once."""

    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def note(n: int) -> Notification:
    return Notification(f"title {n}", f"body {n}", Severity.WARNING, "run-1", "loss")


@pytest.fixture
def webhook():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def worker_for(url: str, time: GivenTime, policy: RetryPolicy) -> DestinationWorker:
    [destination] = parse_destinations([url])
    return DestinationWorker(destination, policy, clock=time.clock, sleep=time.sleep)


async def test_a_refused_message_is_retried_with_exponential_backoff(webhook, caplog) -> None:
    caplog.set_level(logging.INFO, logger="trainsentry.notify")
    webhook.refuse_next = 3
    time = GivenTime()
    worker = worker_for(webhook.url(), time, RetryPolicy(1.0, 60.0, 3600.0))
    log = CheckpointLog()
    checkpoint = log.open("p", offset=1, state=None, deliveries=1)
    await worker.put(note(1), checkpoint)
    await worker.close()
    await worker.run()
    assert time.waits == [1.0, 2.0, 4.0]
    assert (worker.counts.delivered, worker.counts.failed_attempts, worker.counts.given_up) == (1, 3, 0)
    assert checkpoint.done and webhook.messages() == ["body 1"]
    lines = [r.getMessage() for r in caplog.records]
    assert sum("delivery failed" in line for line in lines) == 1
    assert sum("delivering again after 3 failed attempt(s)" in line for line in lines) == 1
    assert all("s3cr3t" not in line for line in lines)


async def test_messages_refused_too_long_are_given_up_together_and_counted(caplog) -> None:
    caplog.set_level(logging.INFO, logger="trainsentry.notify")
    down = WebhookReceiver()  # its port refuses connections
    time = GivenTime()
    worker = worker_for(down.url(), time, RetryPolicy(1.0, 60.0, give_up_after_seconds=5.0))
    log = CheckpointLog()
    checkpoints = [log.open("p", offset=n, state=None, deliveries=1) for n in range(3)]
    for n, checkpoint in enumerate(checkpoints):
        await worker.put(note(n), checkpoint)
    await worker.close()
    await worker.run()
    # Attempts at t = 0, 1, 3, 7: the fourth fails past the limit, and all three are given up.
    assert time.waits == [1.0, 2.0, 4.0]
    assert (worker.counts.delivered, worker.counts.failed_attempts, worker.counts.given_up) == (0, 4, 3)
    assert all(c.done for c in checkpoints) and log.take_ready()["p"].offset == 2
    lines = [r.getMessage() for r in caplog.records]
    assert sum("delivery failed" in line for line in lines) == 1
    assert sum("gave up 3 message(s)" in line for line in lines) == 1


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(0.5, 4.0)
    assert [policy.backoff(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
