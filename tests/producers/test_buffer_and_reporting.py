import logging
import sys
import threading

import pytest

from trainsentry.consumers.broker import free_port
from trainsentry.producers.buffer import EventBuffer
from trainsentry.producers.drop_report import DropReporter
from trainsentry.producers.kafka_logging import quiet_aiokafka_in_this_thread, unquiet_aiokafka_in_this_thread
from trainsentry.producers.publisher import EVENT_OVERHEAD_BYTES, TensorPublisher
from trainsentry.producers.save_config import SaveConfig
from trainsentry.producers.sender import BackgroundSender
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


def test_a_closed_buffer_refuses_new_items_and_counts_what_it_held() -> None:
    buffer = EventBuffer(max_bytes=100)
    buffer.put("a", 10)
    buffer.put("b", 10)
    assert buffer.close() == 2
    assert not buffer.put("late", 10)
    assert (len(buffer), buffer.bytes, buffer.dropped) == (0, 0, 0)  # refused is not dropped
    assert buffer.close() == 0


def unreachable_sender(**settings) -> BackgroundSender:
    return BackgroundSender(SenderSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", **settings))


def submit_one(sender: BackgroundSender) -> bool:
    return sender.submit("t.tensors", b"k", b"payload", lambda payload: payload, 64)


def test_an_event_submitted_while_close_runs_is_counted_or_refused() -> None:
    # The interleaving that lost events: submit() has seen that the sender is not closing, then
    # close() runs to the end (the sender thread counts and discards what waits), then the put.
    sender = unreachable_sender(close_timeout_s=1.0)
    accepted = sum(submit_one(sender) for _ in range(10))
    put = sender._buffer.put

    def put_after_a_whole_close(item, size: int) -> bool:
        closer = threading.Thread(target=sender.close)
        closer.start()
        closer.join()
        return put(item, size)

    sender._buffer.put = put_after_a_whole_close
    accepted += submit_one(sender)

    stats = sender.stats()
    assert accepted == 10  # the late one refused, and submit() said so
    assert stats.sent + stats.lost == accepted  # every accepted event sent or counted as lost


@pytest.mark.parametrize("round_", range(5))
def test_sent_plus_lost_is_what_was_accepted_when_close_races_submitting_threads(round_: int) -> None:
    sender = unreachable_sender(buffer_bytes=64 * 100, close_timeout_s=1.0)
    accepted = [0] * 4
    submitting = [threading.Event() for _ in accepted]

    def training_thread(index: int) -> None:
        while submit_one(sender):  # until the sender refuses: it is closed
            accepted[index] += 1
            submitting[index].set()

    threads = [threading.Thread(target=training_thread, args=(i,)) for i in range(len(accepted))]
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: every interleaving counts
    try:
        for thread in threads:
            thread.start()
        for event in submitting:
            event.wait()
        sender.close()  # while every thread is submitting
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)

    stats = sender.stats()
    assert stats.sent == 0 and all(accepted)
    assert stats.sent + stats.lost == sum(accepted)


class DropsBetweenReads(EventBuffer):
    """Each read of ``dropped`` sees one more drop, as when training threads drop concurrently."""

    @property
    def dropped(self) -> int:
        self._drops += 1
        return self._drops

    @dropped.setter
    def dropped(self, value: int) -> None:
        self._drops = value


def test_stats_take_one_reading_of_the_drop_count() -> None:
    sender = unreachable_sender(close_timeout_s=1.0)
    sender._buffer = DropsBetweenReads(sender.settings.buffer_bytes)
    try:
        stats = sender.stats()
        assert stats.failed == 0  # nothing was ever taken from the buffer, so nothing failed
        assert stats.lost == stats.dropped
    finally:
        sender.close()
