"""Messages read well and stay in shape whatever the names hold."""

from __future__ import annotations

from datetime import UTC

from trainsentry.consumers.notify.message import alert_notification, summary_notification
from trainsentry.consumers.notify.severity import Severity
from trainsentry.consumers.notify.throttle import Carried, HeldAlert, Send, Summary
from trainsentry.protocol import AlertEvent

T = 1_764_670_445.0  # 2025-12-02 10:14:05 UTC


def alert(**fields) -> AlertEvent:
    base = dict(trial="run-7", ts=T, id="x", rule="loss-stalled", rule_type="LossNotDecreasing",
                mode="TRAIN", step=140, tensors=("loss",), message="loss did not decrease",
                details={}, event_ts=T)
    return AlertEvent(**{**base, **fields})


def test_odd_characters_in_names_stay_on_their_line() -> None:
    evil = alert(trial="run\n[error] forged line\x00\x1b[2J", tensors=("fc1\r\nweight", "\u202egpj.exe"),
                 message="line one\nline two")
    n = alert_notification(Send(evil, Severity.ERROR, None), tz=UTC)
    assert "\n" not in n.title and "\x1b" not in n.body and "\x00" not in n.body
    assert n.body.count("\n") == alert_notification(Send(alert(), Severity.ERROR, None),
                                                    tz=UTC).body.count("\n")
    assert "trial:     run\\n[error] forged line\\x00\\x1b[2J" in n.body
    assert "tensors:   fc1\\r\\nweight, \\u202egpj.exe" in n.body


def test_long_fields_are_cut_and_many_tensors_summed_up() -> None:
    n = alert_notification(Send(alert(message="x" * 5000, tensors=tuple(f"t{i}" for i in range(25))),
                                Severity.INFO, None), tz=UTC)
    assert len(n.title) <= 150 and len(n.body) < 2000
    assert "and 15 more" in n.body


def test_since_names_the_day_when_it_is_not_today() -> None:
    n = alert_notification(Send(alert(), Severity.WARNING, Carried(3, T - 86_400, Severity.WARNING)),
                           tz=UTC)
    assert n.body.endswith("and 3 more since 2025-12-01 10:14 UTC")


def test_a_summary_of_one() -> None:
    s = Summary("run-7", "loss-stalled", 1, T, Severity.WARNING,
                HeldAlert("LossNotDecreasing", "3", "EVAL", 9, "m"))
    n = summary_notification(s, 90, now=T + 90, tz=UTC)
    assert n.body.startswith("1 more alert of loss-stalled on run-7 since 10:14 UTC "
                             "(at most one message per 90 s).")
    assert "severity:  warning\n" in n.body + "\n" and "the highest" not in n.body
