"""``trainsentry notify`` end to end: alerts on the real broker, messages at real local receivers
(an HTTP server taking the JSON webhook, an SMTP server taking the mail), a restart in the middle,
a receiver that is down and comes back, bad records on the topic."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import UTC

import msgpack
import pytest
from aiokafka import AIOKafkaProducer

from tests.consumers.notify.receivers import SmtpReceiver, WebhookReceiver, text_of
from trainsentry.consumers.notify.destinations import parse_destinations
from trainsentry.consumers.notify.notifier import Notifier, NotifyOptions
from trainsentry.consumers.notify.settings import NotifySettings
from trainsentry.consumers.notify.severity import Severity
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.protocol import AlertEvent, ScalarEvent, Topics, encode, to_wire

SECRET = "s3cr3t-token-path"
T0 = 1_764_670_000.0  # the notifier's clock in these tests: given, so windows close when told


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def alert(trial: str, step: int, rule: str = "loss", severity: str | None = "warning") -> bytes:
    event = AlertEvent(trial=trial, ts=T0 + step, id=f"{trial}-{rule}-{step}", rule=rule,
                       rule_type="LossNotDecreasing", mode="TRAIN", step=step, tensors=("loss",),
                       message=f"loss did not decrease (step {step})", details={"step": step},
                       event_ts=T0 + step)
    wire = to_wire(event)
    if severity is not None:
        wire["severity"] = severity
    return msgpack.packb(wire, use_bin_type=True)


async def publish(servers: str, topic: str, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait for ``condition``; the deadline is one no healthy run reaches (a hang becomes a failure)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout}s")
        await asyncio.sleep(0.05)


class RunningNotifier:
    """A :class:`Notifier` running as a task of the test's event loop."""

    def __init__(self, servers: str, topics: Topics, urls: list[str], group: str, *, clock: Clock,
                 wait_seconds: float = 300.0, start: str = "beginning", **settings: object) -> None:
        kafka = KafkaSettings(servers, topics=topics, group_id=group, session_timeout_ms=2000,
                              heartbeat_interval_ms=500)
        notify = NotifySettings(to=tuple(urls), wait_seconds=wait_seconds, first_backoff_seconds=0.05,
                                max_backoff_seconds=0.2, **settings)
        options = NotifyOptions(alerts_topic=topics.alerts, group_id=group, start=start,
                                tick_seconds=0.05, tz=UTC)
        self.notifier = Notifier(kafka, notify, options, parse_destinations(urls), clock=clock)
        self.stop = asyncio.Event()
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> Notifier:
        self.task = asyncio.create_task(self.notifier.run(self.stop))
        await eventually(lambda: self.notifier._lanes or self.task.done(), "partitions assigned")
        return self.notifier

    async def __aexit__(self, *exc: object) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)


@pytest.fixture
def webhook():
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp():
    receiver = SmtpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def group() -> str:
    return f"notify-{uuid.uuid4().hex[:8]}"


async def test_alerts_reach_the_webhook_and_the_mailbox_throttled_with_the_count(
        bootstrap_servers, topics, webhook, smtp, group, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    clock = Clock()
    await publish(bootstrap_servers, topics.alerts, [("run-7", alert("run-7", s)) for s in (1, 2, 3)]
                  + [("run-8", alert("run-8", 1, severity="error"))])
    async with RunningNotifier(bootstrap_servers, topics, [webhook.url(), smtp.url()], group,
                               clock=clock) as notifier:
        await eventually(lambda: len(webhook.received) == 2 and len(smtp.mails) == 2, "first messages")
        # Steps 2 and 3 of run-7 are inside its window: held back, nothing more sent.
        assert notifier.stats.held_back == 2
        clock.now += 301  # the window closes with no later alert: a summary of the two
        await eventually(lambda: len(webhook.received) == 3 and len(smtp.mails) == 3, "summary")
        await publish(bootstrap_servers, topics.alerts, [("run-7", alert("run-7", 4))])
        await asyncio.sleep(0.5)
        assert len(webhook.received) == 3  # inside the window the summary opened
        clock.now += 301
        await eventually(lambda: len(webhook.received) == 4, "second summary")

    hooks = webhook.received
    assert {h.path for h in hooks} == {f"/hooks/{SECRET}"}
    first = {h.payload["title"]: h.payload for h in hooks[:2]}
    run8 = first["[error] loss on run-8: loss did not decrease (step 1)"]
    assert run8["type"] == "failure"
    assert "trial:     run-8" in run8["message"] and "severity:  error" in run8["message"]
    summary = hooks[2].payload["message"]
    assert summary.startswith("2 more alerts of loss on run-7 since 10:06 UTC")
    assert "The newest: step 3 (TRAIN), worker 0: loss did not decrease (step 3)" in summary
    assert hooks[3].payload["message"].startswith("1 more alert of loss on run-7")

    mails = smtp.mails
    assert sorted(m["Subject"] for m in mails[:2]) == sorted(first)
    body = text_of(next(m for m in mails if "run-7" in m["Subject"]))
    assert "rule:      loss (LossNotDecreasing)" in body and "step:      1 (TRAIN)" in body
    assert SECRET not in caplog.text


async def test_a_restart_in_the_middle_repeats_nothing_and_loses_nothing(
        bootstrap_servers, topics, webhook, group) -> None:
    clock = Clock()
    urls = [webhook.url()]
    await publish(bootstrap_servers, topics.alerts,
                  [("run-1", alert("run-1", 1)), ("run-2", alert("run-2", 1)), ("run-1", alert("run-1", 2))])
    async with RunningNotifier(bootstrap_servers, topics, urls, group, clock=clock) as notifier:
        await eventually(lambda: len(webhook.received) == 2 and notifier.stats.held_back == 1, "first run")
    await publish(bootstrap_servers, topics.alerts,
                  [("run-1", alert("run-1", 3)), ("run-3", alert("run-3", 1))])
    async with RunningNotifier(bootstrap_servers, topics, urls, group, clock=clock) as notifier:
        # The window of run-1 survived the restart: step 3 is held back with step 2, not sent.
        await eventually(lambda: len(webhook.received) == 3 and notifier.stats.held_back == 1,
                         "run-3 sent and run-1 held back after the restart")
        assert notifier.stats.alerts == 2  # only what came after the restart was read again
        clock.now += 301
        await eventually(lambda: len(webhook.received) == 4, "the summary of run-1")
    messages = webhook.messages()
    titles = [h.payload["title"] for h in webhook.received]
    assert len(titles) == len(set(titles)) == 4
    assert messages[3].startswith("2 more alerts of loss on run-1")  # step 2 (before) + step 3 (after)
    async with RunningNotifier(bootstrap_servers, topics, urls, group, clock=clock):
        await asyncio.sleep(1.0)
    assert len(webhook.received) == 4


async def test_a_receiver_that_is_down_comes_back_and_gets_its_messages(
        bootstrap_servers, topics, webhook, smtp, group, caplog) -> None:
    caplog.set_level(logging.INFO, logger="trainsentry.notify")
    webhook.stop()
    clock = Clock()
    async with RunningNotifier(bootstrap_servers, topics, [webhook.url(), smtp.url()], group,
                               clock=clock) as notifier:
        await publish(bootstrap_servers, topics.alerts, [("run-1", alert("run-1", 1)),
                                                         ("run-2", alert("run-2", 1))])
        # The mailbox is not held back by the webhook being down.
        await eventually(lambda: len(smtp.mails) == 2, "mails while the webhook is down")
        webhook_worker = notifier.workers[0]
        await eventually(lambda: webhook_worker.counts.failed_attempts >= 3, "retries")
        assert notifier.checkpoints.waiting() > 0  # nothing committed past the undelivered messages
        webhook.start()
        await eventually(lambda: len(webhook.received) == 2, "webhook back")
        await eventually(lambda: notifier.checkpoints.waiting() == 0, "checkpoints kept")
        assert webhook_worker.counts.given_up == 0
    failed = [r for r in caplog.records if "delivery failed" in r.getMessage()]
    assert len(failed) == 1  # once per failure streak, not per attempt
    assert any("delivering again" in r.getMessage() for r in caplog.records)
    assert SECRET not in caplog.text
    async with RunningNotifier(bootstrap_servers, topics, [webhook.url(), smtp.url()], group, clock=clock):
        await asyncio.sleep(1.0)
    assert len(webhook.received) == 2 and len(smtp.mails) == 2


async def test_a_destination_that_never_answers_is_given_up_and_the_rest_goes_on(
        bootstrap_servers, topics, webhook, group) -> None:
    down = WebhookReceiver()  # never started: its port refuses connections
    clock = Clock()
    async with RunningNotifier(bootstrap_servers, topics, [down.url(), webhook.url()], group, clock=clock,
                               give_up_after_seconds=0.3) as notifier:
        await publish(bootstrap_servers, topics.alerts, [("run-1", alert("run-1", 1))])
        await eventually(lambda: notifier.workers[0].counts.given_up == 1, "given up")
        await eventually(lambda: notifier.checkpoints.waiting() == 0, "kept after giving up")
    assert len(webhook.received) == 1


async def test_bad_records_are_counted_and_skipped(bootstrap_servers, topics, webhook, group) -> None:
    scalar = ScalarEvent(trial="run-1", ts=T0, mode="TRAIN", step=1, name="loss", value=0.5)
    nested = msgpack.packb([[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]] * 10)
    async with RunningNotifier(bootstrap_servers, topics, [webhook.url()], group, clock=Clock()) as notifier:
        await publish(bootstrap_servers, topics.alerts, [
            ("run-1", b"\xc1 not msgpack"), ("run-1", encode(scalar)), ("run-1", nested),
            ("run-1", msgpack.packb({"v": 1, "type": "alert", "trial": "run-1"})),
            ("run-1", alert("run-1", 1, severity="catastrophic")), ("run-1", alert("run-1", 1)),
            ("run-1", alert("run-1", 1))])
        await eventually(lambda: len(webhook.received) == 1, "the valid alert")
        # Not msgpack, not an alert, not a map, missing fields, a severity the protocol refuses.
        await eventually(lambda: notifier.stats.bad_records == 5, "bad records counted")
        assert notifier.stats.duplicates == 1  # the same alert id twice: one message
    assert "severity:  warning" in webhook.messages()[0]


async def test_filters_and_history(bootstrap_servers, topics, webhook, group) -> None:
    await publish(bootstrap_servers, topics.alerts, [("old", alert("old", 1, severity="error"))])
    async with RunningNotifier(bootstrap_servers, topics, [webhook.url()], group, clock=Clock(), start="now",
                               min_severity=Severity.WARNING, rules=("loss",)) as notifier:
        await publish(bootstrap_servers, topics.alerts, [
            ("run-1", alert("run-1", 1, severity="info")),
            ("run-1", alert("run-1", 2, rule="other", severity="error")),
            ("run-1", alert("run-1", 3, severity=None)),  # no severity: a warning
            ("run-2", alert("run-2", 1, severity="error"))])
        await eventually(lambda: len(webhook.received) == 2, "kept alerts")
        await eventually(lambda: notifier.stats.filtered == 2 and notifier.stats.history == 1,
                         "filtered, and the alert from before the first start taken as history")
    assert sorted(h.payload["title"].split(":")[0] for h in webhook.received) == [
        "[error] loss on run-2", "[warning] loss on run-1"]
