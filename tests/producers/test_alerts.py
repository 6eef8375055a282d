import dataclasses
import threading

import pytest

from tests.sidecar_harness import publish
from trainsentry.consumers.broker import free_port
from trainsentry.producers import AlertFollower
from trainsentry.protocol import AlertEvent, encode

pytestmark = pytest.mark.usefixtures("broker_binary")  # brokers of its own, or none reachable


def alert(trial: str, id: str, rule: str = "LossNotDecreasing", step: int = 10) -> AlertEvent:
    return AlertEvent(trial=trial, ts=1_700_000_000.0 + step, id=id, rule=rule, rule_type=rule,
                      mode="TRAIN", step=step, tensors=("loss",), message=f"{rule} at step {step}",
                      details={"step": step}, event_ts=1_700_000_000.0 + step)


def test_the_follower_sees_its_trials_alert_once(bootstrap_servers: str, topics) -> None:
    called: list[str] = []
    second = threading.Event()

    def on_alert(event: AlertEvent) -> None:
        called.append(event.id)
        if len(called) == 2:
            second.set()
        raise RuntimeError("a broken callback must not stop the follower")

    follower = AlertFollower("run-a", on_alert=on_alert, bootstrap_servers=bootstrap_servers,
                             topic_prefix=topics.prefix, poll_interval_ms=50)
    try:
        assert not follower.should_stop()
        publish(bootstrap_servers, topics, [alert("run-b", "other-trial")], topic=topics.alerts)
        publish(bootstrap_servers, topics, [alert("run-a", "a1"), alert("run-a", "a1"),
                                            alert("run-a", "a2", step=20)], topic=topics.alerts)
        assert follower.wait(20)
        assert second.wait(20)
        assert follower.should_stop()
        assert [a.id for a in follower.alerts] == ["a1", "a2"] == called  # the duplicate ignored
    finally:
        follower.close()


def test_a_rule_filter_and_alerts_from_before_the_start(bootstrap_servers: str, topics) -> None:
    publish(bootstrap_servers, topics, [alert("run-c", "early", rule="WeightUpdateRatio", step=1),
                                        alert("run-c", "late", rule="LossNotDecreasing", step=2)],
            topic=topics.alerts)
    with AlertFollower("run-c", rules=["LossNotDecreasing"], bootstrap_servers=bootstrap_servers,
                       topic_prefix=topics.prefix, poll_interval_ms=50) as follower:
        assert follower.wait(20)  # published before the follower started: read from the beginning
        assert [a.id for a in follower.alerts] == ["late"]
    with AlertFollower("run-c", from_beginning=False, bootstrap_servers=bootstrap_servers,
                       topic_prefix=topics.prefix, poll_interval_ms=50) as late_follower:
        assert not late_follower.wait(1.0)  # both were stamped before it started


def test_no_broker_no_stop_and_a_prompt_close() -> None:
    follower = AlertFollower("run-d", bootstrap_servers=f"127.0.0.1:{free_port()}")
    assert not follower.wait(0.5)
    follower.close(timeout=5)
    assert not follower._thread.is_alive()


@pytest.mark.parametrize("written_after_start, kept", [(-1.0, False), (0.0, True), (1.0, True)])
def test_not_from_the_beginning_keeps_alerts_about_events_written_since_the_start(
        written_after_start: float, kept: bool) -> None:
    follower = AlertFollower("run-e", from_beginning=False, start=False,
                             bootstrap_servers=f"127.0.0.1:{free_port()}")
    event_ts = follower.since + written_after_start
    # The sidecar raises it now, whenever its input event was written: the alert's ts is that
    # event's, and only the event's time decides.
    late = dataclasses.replace(alert("run-e", "e1"), ts=event_ts, event_ts=event_ts)
    follower._handle(b"run-e", encode(late))
    assert follower.should_stop() is kept


def test_an_alert_says_itself_whether_training_is_to_stop(bootstrap_servers: str, topics) -> None:
    # StalledTrainingRule's stop_training_on_fire travels as details["stop_training"]
    def stall(id: str, rule: str, stop: bool) -> AlertEvent:
        return dataclasses.replace(alert("run-s", id, rule=rule), rule_type="StalledTrainingRule",
                                   details={"stop_training": stop})

    publish(bootstrap_servers, topics, [stall("quiet", "stalled-quiet", False),
                                        stall("stop", "stalled-stop", True)], topic=topics.alerts)
    with AlertFollower("run-s", rules=["LossNotDecreasing"], bootstrap_servers=bootstrap_servers,
                       topic_prefix=topics.prefix, poll_interval_ms=50) as follower:
        assert follower.wait(20)  # asks to stop: counts whatever the filter
        assert [a.id for a in follower.alerts] == ["stop"]
    with AlertFollower("run-s", rules=["stalled-quiet"], bootstrap_servers=bootstrap_servers,
                       topic_prefix=topics.prefix, poll_interval_ms=50) as follower:
        assert follower.wait(20)  # asked not to stop, but named by the filter
        assert [a.id for a in follower.alerts] == ["quiet", "stop"]
    # without a filter: every alert counts but the one that asks not to stop
    with AlertFollower("run-s", bootstrap_servers=bootstrap_servers, topic_prefix=topics.prefix,
                       poll_interval_ms=50) as follower:
        assert follower.wait(20)
        assert [a.id for a in follower.alerts] == ["stop"]
