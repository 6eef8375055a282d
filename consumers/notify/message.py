"""What a person reads: a title (the chat message's heading, the mail's subject) and a body.

Plain text, one fact per line, because it reads the same in Slack, Teams, Discord and a mail
client: Markdown would turn the underscores of tensor names into italics in one place and show
them raw in another. Every name from the stream is made printable on one line
(:func:`~trainsentry.consumers.printable.printable`) and cut to a length a chat window shows.

>>> from datetime import timezone
>>> from trainsentry.protocol import AlertEvent
>>> from trainsentry.consumers.notify.throttle import Carried
>>> a = AlertEvent(trial="run-7", ts=1764670445.0, id="x", rule="loss-stalled",
...                rule_type="LossNotDecreasing", mode="TRAIN", step=140, tensors=("loss",),
...                message="loss did not decrease over the last 20 steps", details={}, event_ts=1.0)
>>> n = alert_notification(Send(a, Severity.WARNING, Carried(14, 1764669720.0, Severity.WARNING)),
...                        tz=timezone.utc)
>>> print(n.title)
[warning] loss-stalled on run-7: loss did not decrease over the last 20 steps
>>> print(n.body)
loss did not decrease over the last 20 steps
<BLANKLINE>
trial:     run-7
worker:    0
rule:      loss-stalled (LossNotDecreasing)
step:      140 (TRAIN)
severity:  warning
tensors:   loss
time:      2025-12-02 10:14:05 UTC
<BLANKLINE>
and 14 more since 10:02 UTC
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from trainsentry.consumers.printable import printable

from .severity import Severity
from .throttle import Send, Summary

NAME_CHARS = 200
MESSAGE_CHARS = 1000
TITLE_CHARS = 150
TENSORS_SHOWN = 10


@dataclass(frozen=True)
class Notification:
    """One message to every destination."""

    title: str
    body: str
    severity: Severity
    trial: str
    rule: str


def alert_notification(send: Send, tz: tzinfo | None = None) -> Notification:
    """The message for one alert, with the count held back before it."""
    alert = send.alert
    message = printable(alert.message, MESSAGE_CHARS)
    rule = _rule(alert.rule, alert.rule_type)
    tensors = ", ".join(printable(t, NAME_CHARS) for t in alert.tensors[:TENSORS_SHOWN])
    if len(alert.tensors) > TENSORS_SHOWN:
        tensors += f" and {len(alert.tensors) - TENSORS_SHOWN} more"
    lines = [
        message,
        "",
        _field("trial", printable(alert.trial, NAME_CHARS)),
        _field("worker", printable(alert.worker, NAME_CHARS)),
        _field("rule", rule),
        _field("step", f"{alert.step} ({printable(alert.mode, NAME_CHARS)})"),
        _field("severity", send.severity.value),
        _field("tensors", tensors or "-"),
        _field("time", _moment(alert.ts, tz)),
    ]
    if send.carried is not None:
        lines += ["", f"and {send.carried.count} more since {_since(send.carried.since, alert.ts, tz)}"]
    title = (f"[{send.severity.value}] {printable(alert.rule, NAME_CHARS)} on "
             f"{printable(alert.trial, NAME_CHARS)}: {message}")
    return Notification(printable(title, TITLE_CHARS), "\n".join(lines), send.severity,
                        alert.trial, alert.rule)


def summary_notification(summary: Summary, wait_seconds: float, now: float,
                         tz: tzinfo | None = None) -> Notification:
    """The message for alerts held back when no later alert came to carry them.

    >>> from datetime import timezone
    >>> from trainsentry.consumers.notify.throttle import HeldAlert
    >>> s = Summary("run-7", "loss-stalled", 14, 1764669720.0, Severity.ERROR,
    ...             HeldAlert("LossNotDecreasing", "0", "TRAIN", 280, "loss did not decrease"))
    >>> n = summary_notification(s, 300, now=1764670020.0, tz=timezone.utc)
    >>> print(n.title)
    [error] loss-stalled on run-7: 14 more since 10:02 UTC
    >>> print(n.body)
    14 more alerts of loss-stalled on run-7 since 10:02 UTC (at most one message per 5 min).
    The newest: step 280 (TRAIN), worker 0: loss did not decrease
    <BLANKLINE>
    trial:     run-7
    rule:      loss-stalled (LossNotDecreasing)
    severity:  error (the highest of the 14)
    """
    last = summary.last
    trial, rule = printable(summary.trial, NAME_CHARS), printable(summary.rule, NAME_CHARS)
    since = _since(summary.since, now, tz)
    plural = "alert" if summary.count == 1 else "alerts"
    lines = [
        f"{summary.count} more {plural} of {rule} on {trial} since {since} "
        f"(at most one message per {_duration(wait_seconds)}).",
        f"The newest: step {last.step} ({printable(last.mode, NAME_CHARS)}), worker "
        f"{printable(last.worker, NAME_CHARS)}: {printable(last.message, MESSAGE_CHARS)}",
        "",
        _field("trial", trial),
        _field("rule", _rule(summary.rule, last.rule_type)),
        _field("severity", summary.worst.value
               + (f" (the highest of the {summary.count})" if summary.count > 1 else "")),
    ]
    title = f"[{summary.worst.value}] {rule} on {trial}: {summary.count} more since {since}"
    return Notification(printable(title, TITLE_CHARS), "\n".join(lines), summary.worst,
                        summary.trial, summary.rule)


def _field(name: str, value: str) -> str:
    return f"{name + ':':<10} {value}"


def _rule(rule: str, rule_type: str) -> str:
    shown = printable(rule, NAME_CHARS)
    return shown if rule == rule_type else f"{shown} ({printable(rule_type, NAME_CHARS)})"


def _local(ts: float, tz: tzinfo | None) -> datetime:
    return datetime.fromtimestamp(ts, tz) if tz is not None else datetime.fromtimestamp(ts).astimezone()


def _moment(ts: float, tz: tzinfo | None) -> str:
    try:
        return _local(ts, tz).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    except (OverflowError, OSError, ValueError):  # a writer's clock far out of range
        return f"{ts!r} (seconds since the epoch)"


def _since(since: float, reference: float, tz: tzinfo | None) -> str:
    """``10:02 UTC``, with the date when it is not the reference's day."""
    try:
        then, ref = _local(since, tz), _local(reference, tz)
    except (OverflowError, OSError, ValueError):
        return f"{since!r}"
    shape = "%H:%M %Z" if then.date() == ref.date() else "%Y-%m-%d %H:%M %Z"
    return then.strftime(shape).strip()


def _duration(seconds: float) -> str:
    """
    >>> _duration(300), _duration(90), _duration(3600), _duration(0.5)
    ('5 min', '90 s', '1 h', '0.5 s')
    """
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"
