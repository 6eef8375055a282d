"""The follower survives whatever the alerts topic holds and whatever the broker does.

Every bound here is a count: records read, records skipped, consumers started, failed attempts,
log records. A follower that spun (reconnecting, re-reading from the beginning) would show it in
those counts, not only in the CPU it burnt.
"""

import asyncio
import logging
import time

import msgpack
import pytest

from tests.producers.test_alerts import alert
from tests.sidecar_harness import publish
from trainsentry.consumers.broker import free_port
from trainsentry.producers import AlertFollower, SenderSettings
from trainsentry.protocol import ScalarEvent, encode

pytestmark = pytest.mark.usefixtures("broker_binary")  # brokers of its own, or none reachable

TRIAL = "run-poisoned"


def nested_alert(trial: str, depth: int) -> bytes:
    """A valid alert of ``trial`` except for its details: maps nested ``depth`` deep (~3 bytes each)."""
    fields = msgpack.unpackb(encode(alert(trial, "deep")))
    fields["details"] = "@@nested@@"
    return msgpack.packb(fields).replace(msgpack.packb("@@nested@@"), b"\x81\xa1x" * depth + b"\xc0")


def poison(trial: str) -> list[bytes]:
    """Records keyed with ``trial`` that are not valid alerts of it, each of another kind."""
    return [
        b"\xc1\xff not msgpack at all",
        nested_alert(trial, 5000),
        encode(alert("someone-else", "misfiled")),  # valid, but of another trial under this key
        encode(ScalarEvent(trial=trial, ts=1.0, mode="TRAIN", step=1, name="loss", value=0.5)),
    ]


def warnings_of(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and text in r.getMessage()]


def wait_until(condition, timeout: float = 30.0) -> bool:
    """Poll ``condition`` until it holds; ``False`` if it never did (a bound on a hang, not a measure)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_poison_on_the_alerts_topic_is_counted_and_skipped_and_the_next_alert_still_stops(
        bootstrap_servers: str, topics, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    key = TRIAL.encode()
    # All of it under the trial's key: one partition, the poison before the alert that matters.
    publish(bootstrap_servers, topics, poison(TRIAL), topic=topics.alerts, key=key)
    publish(bootstrap_servers, topics, [alert("another-run", "theirs"), alert(TRIAL, "stop-1")],
            topic=topics.alerts)

    follower = AlertFollower(TRIAL, bootstrap_servers=bootstrap_servers, topic_prefix=topics.prefix,
                             poll_interval_ms=50)
    try:
        assert follower.wait(30)
        assert follower.should_stop()
        assert [a.id for a in follower.alerts] == ["stop-1"]
        assert wait_until(lambda: follower.stats().records_read == 6)

        # More of the same while it follows: the later poison is only counted.
        publish(bootstrap_servers, topics, [b"\x00" * 64, b""], topic=topics.alerts, key=key)
        publish(bootstrap_servers, topics, [alert(TRIAL, "stop-2")], topic=topics.alerts)
        assert wait_until(lambda: len(follower.alerts) == 2)
        assert wait_until(lambda: follower.stats().records_read == 9)
        stats = follower.stats()
    finally:
        follower.close()

    assert [a.id for a in follower.alerts] == ["stop-1", "stop-2"]
    assert stats.unreadable == 6           # four kinds of poison, two more later: all counted
    assert stats.records_read == 9         # every record read once: no re-reading from the start
    assert stats.connects == 1 and stats.failures == 0  # no reconnect at all
    assert len(warnings_of(caplog, "not a valid alert")) == 1  # said once, then counted
    assert len(warnings_of(caplog, "")) == 1


def test_after_a_reconnect_it_resumes_where_it_was_and_reads_nothing_twice(
        bootstrap_servers: str, topics, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    publish(bootstrap_servers, topics, [alert(f"other-{i}", f"o{i}") for i in range(8)]
            + [alert(TRIAL, "first")], topic=topics.alerts)
    follower = AlertFollower(TRIAL, bootstrap_servers=bootstrap_servers, topic_prefix=topics.prefix,
                             poll_interval_ms=50)
    try:
        assert follower.wait(30)
        assert wait_until(lambda: follower.stats().records_read == 9)
        # The consumer stops under the follower's feet: its next read fails and it reconnects.
        consumer = follower._consumer
        asyncio.run_coroutine_threadsafe(consumer.stop(), follower._loop).result(10)
        assert wait_until(lambda: follower.stats().connects == 2)
        publish(bootstrap_servers, topics, [alert(TRIAL, "second")], topic=topics.alerts)
        assert wait_until(lambda: len(follower.alerts) == 2)
        assert wait_until(lambda: follower.stats().records_read == 10)
        stats = follower.stats()
    finally:
        follower.close()

    assert [a.id for a in follower.alerts] == ["first", "second"]
    assert stats.failures == 1 and stats.connects == 2
    assert stats.records_read == 10  # 9 before, 1 after: the 9 were not read again
    assert len(warnings_of(caplog, "following alerts failed")) == 1


def test_an_unreachable_broker_is_retried_with_a_capped_backoff_and_one_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    follower = AlertFollower(TRIAL, bootstrap_servers=f"127.0.0.1:{free_port()}",
                             settings=SenderSettings(reconnect_max_backoff_s=1.0))
    try:
        assert wait_until(lambda: follower.stats().failures >= 4)
        stats = follower.stats()
    finally:
        follower.close(timeout=10)
    assert not follower._thread.is_alive()
    assert stats.connects == 0 and not follower.should_stop()
    assert stats.backoff_s == 1.0  # 0.5, 1, then held at the cap
    assert len(warnings_of(caplog, "cannot reach Kafka")) == 1  # one warning for the whole streak
    # aiokafka's own error about the refused connection passes once, not once per attempt.
    assert len(warnings_of(caplog, "")) <= 2

