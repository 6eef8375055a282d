"""The throttle, with the clock given: windows, counts carried, summaries, state across restarts."""

from __future__ import annotations

import json

from trainsentry.consumers.notify.severity import Severity
from trainsentry.consumers.notify.throttle import Throttle
from trainsentry.protocol import AlertEvent

WAIT = 300.0


def alert(step: int, trial: str = "run-1", rule: str = "loss") -> AlertEvent:
    return AlertEvent(trial=trial, ts=float(step), id=f"{trial}-{rule}-{step}", rule=rule,
                      rule_type="LossNotDecreasing", mode="TRAIN", step=step, tensors=("loss",),
                      message=f"stalled at {step}", details={}, event_ts=float(step))


def test_first_alert_goes_out_and_the_rest_of_the_window_is_counted() -> None:
    t = Throttle(WAIT)
    sent = t.offer(alert(1), Severity.WARNING, now=1000.0)
    assert sent is not None and sent.carried is None
    assert [t.offer(alert(s), Severity.WARNING, now=1000.0 + s) for s in range(2, 16)] == [None] * 14
    assert t.held_back() == 14


def test_an_alert_after_the_window_carries_the_count_and_opens_the_next() -> None:
    t = Throttle(WAIT)
    t.offer(alert(1), Severity.WARNING, now=1000.0)
    for s in range(2, 16):
        t.offer(alert(s), Severity.ERROR if s == 7 else Severity.INFO, now=1010.0)
    sent = t.offer(alert(16), Severity.WARNING, now=1300.0)
    assert sent is not None
    assert (sent.carried.count, sent.carried.since, sent.carried.worst) == (14, 1000.0, Severity.ERROR)
    assert t.offer(alert(17), Severity.WARNING, now=1599.9) is None  # the new window started at 1300
    assert t.held_back() == 1


def test_keys_are_throttled_apart() -> None:
    t = Throttle(WAIT)
    assert t.offer(alert(1, trial="a"), Severity.WARNING, now=0.0) is not None
    assert t.offer(alert(1, trial="b"), Severity.WARNING, now=0.0) is not None
    assert t.offer(alert(1, rule="other"), Severity.WARNING, now=0.0) is not None
    assert t.offer(alert(2, trial="a"), Severity.WARNING, now=1.0) is None


def test_a_window_closing_with_alerts_held_back_yields_one_summary_and_opens_a_window() -> None:
    t = Throttle(WAIT)
    t.offer(alert(1), Severity.WARNING, now=0.0)
    t.offer(alert(2), Severity.WARNING, now=10.0)
    t.offer(alert(3), Severity.WARNING, now=20.0)
    assert t.due(now=299.0) == []
    [summary] = t.due(now=300.0)
    assert (summary.trial, summary.rule, summary.count, summary.since) == ("run-1", "loss", 2, 0.0)
    assert (summary.last.step, summary.last.message) == (3, "stalled at 3")
    assert t.due(now=301.0) == []  # said once
    # A rule firing steadily: one message per window.
    assert t.offer(alert(4), Severity.WARNING, now=301.0) is None
    [again] = t.due(now=600.0)
    assert (again.count, again.since) == (1, 300.0)


def test_a_window_closing_with_nothing_held_back_is_forgotten() -> None:
    t = Throttle(WAIT)
    t.offer(alert(1), Severity.WARNING, now=0.0)
    assert t.due(now=300.0) == [] and len(t) == 0
    assert t.offer(alert(2), Severity.WARNING, now=300.0).carried is None


def test_zero_wait_sends_everything() -> None:
    t = Throttle(0)
    assert all(t.offer(alert(s), Severity.WARNING, now=5.0) is not None for s in range(10))


def test_state_survives_a_restart_as_json() -> None:
    t = Throttle(WAIT)
    t.offer(alert(1), Severity.WARNING, now=0.0)
    t.offer(alert(2), Severity.ERROR, now=5.0)
    restored = Throttle(WAIT)
    restored.restore(json.loads(json.dumps(t.state())))
    assert restored.offer(alert(3), Severity.WARNING, now=10.0) is None  # still inside the window
    [summary] = restored.due(now=300.0)
    assert (summary.count, summary.worst, summary.last.step) == (2, Severity.ERROR, 3)


def test_a_malformed_state_entry_is_skipped() -> None:
    t = Throttle(WAIT)
    t.restore({"windows": [["run-1"], ["run-2", "loss", 0.0, 1, "error", None], "junk"]})
    assert len(t) == 1
