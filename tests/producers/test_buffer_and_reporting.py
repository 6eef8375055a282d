import logging
import threading

import pytest

from trainsentry.consumers.broker import free_port
from trainsentry.producers.buffer import EventBuffer
from trainsentry.producers.drop_report import DropReporter
from trainsentry.producers.kafka_logging import quiet_aiokafka_in_this_thread, unquiet_aiokafka_in_this_thread
from trainsentry.producers.publisher import EVENT_OVERHEAD_BYTES, TensorPublisher
from trainsentry.producers.save_config import SaveConfig
from trainsentry.producers.settings import DropPolicy, SenderSettings


def test_drop_oldest_makes_room_for_the_new_event_and_counts_what_it_evicted() -> None:
    buffer = EventBuffer(max_bytes=100, policy=DropPolicy.OLDEST)
    assert all(buffer.put(i, 30) for i in range(5))
    assert buffer.dropped == 2
    assert buffer.take(10) == [2, 3, 4]
    assert buffer.bytes == 0


def test_drop_newest_keeps_what_is_waiting() -> None:
    buffer = EventBuffer(max_bytes=100, policy=DropPolicy.NEWEST)
    assert [buffer.put(i, 30) for i in range(5)] == [True, True, True, False, False]
    assert buffer.dropped == 2
    assert buffer.take(10) == [0, 1, 2]


@pytest.mark.parametrize("policy", list(DropPolicy))
def test_an_event_larger_than_the_buffer_is_dropped_without_evicting_anything(policy: DropPolicy) -> None:
    buffer = EventBuffer(max_bytes=100, policy=policy)
    buffer.put("small", 10)
    assert not buffer.put("huge", 101)
    assert buffer.dropped == 1
    assert buffer.take(10) == ["small"]


def test_take_stops_at_the_byte_budget_but_always_takes_one() -> None:
    buffer = EventBuffer(max_bytes=1200)
    for i, size in enumerate([400, 400, 400]):
        buffer.put(i, size)
    assert buffer.take(10, max_bytes=500) == [0]
    assert buffer.take(1, max_bytes=10) == [1]
    assert buffer.bytes == 400 and len(buffer) == 1


def test_losses_are_reported_at_once_then_at_most_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    reporter = DropReporter("the broker is away", interval=60.0, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="trainsentry.producers")

    assert not reporter.poll(0)               # nothing lost, nothing said
    assert reporter.poll(5)                   # the first loss: at once
    for lost in range(6, 5000):               # a loss at every step for 59 s: silence
        now[0] += 59.0 / 5000
        assert not reporter.poll(lost)
    now[0] = 1061.0
    assert reporter.poll(5000)                # one summary per interval
    assert not reporter.poll(5000)
    assert reporter.final(5001)               # at shutdown the remainder, whatever the interval
    assert not reporter.final(5001)

    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert messages[0].startswith("trainsentry: 5 events dropped (5 in total")
    assert "4995 events dropped in the last 61 s (5000 in total" in messages[1]
    assert "1 events dropped" in messages[2] and "the broker is away" in messages[2]


def test_a_broker_that_never_existed_costs_the_loop_only_counted_drops(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="trainsentry.producers")
    size = EVENT_OVERHEAD_BYTES + len("loss")
    settings = SenderSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", buffer_bytes=10 * size)
    publisher = TensorPublisher("never-connected", settings=settings,
                                save_config=SaveConfig(save_interval=1))
    for step in range(1000):
        assert publisher.scalar("loss", 1.0, step=step, collections=["losses"]) is True

    assert publisher.stats().dropped == 990   # drop-oldest: the 10 newest wait in the buffer
    publisher.close()                          # returns at once: no broker ever answered
    stats = publisher.stats()
    assert (stats.dropped, stats.failed, stats.sent) == (990, 10, 0)

    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot reach Kafka" in m for m in messages) == 1
    dropped = [m for m in messages if "events dropped" in m]
    assert 1 <= len(dropped) <= 2              # at most: the first loss, and the rest at close
    assert "(1000 in total" in dropped[-1]


def test_aiokafka_errors_from_trainsentry_threads_are_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aiokafka")
    kafka_log = logging.getLogger("aiokafka")

    def from_a_sender_thread() -> None:
        quiet_aiokafka_in_this_thread()
        try:
            for _ in range(50):
                kafka_log.error("Unable connect to %r", "127.0.0.1:1")
        finally:
            unquiet_aiokafka_in_this_thread()

    thread = threading.Thread(target=from_a_sender_thread)
    thread.start()
    thread.join()
    for _ in range(3):  # the application's own Kafka clients are not ours to quiet
        kafka_log.error("Unable connect to %r", "127.0.0.1:1")
    assert len([r for r in caplog.records if r.name == "aiokafka"]) == 1 + 3
