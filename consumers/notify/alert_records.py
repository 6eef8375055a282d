"""One record of an alerts topic read as an alert and its severity, or the reason it is not one.

Whatever a record holds (bytes that are not msgpack, another event type, a map nested a thousand
deep) the answer is a value, never an exception: a bad record is counted and skipped by whoever
reads, and never stops them.

>>> from types import SimpleNamespace
>>> import msgpack
>>> from trainsentry.protocol import AlertEvent, to_wire
>>> alert = AlertEvent(trial="run-1", ts=1.0, id="a1", rule="loss", rule_type="LossNotDecreasing",
...                    mode="TRAIN", step=3, tensors=("loss",), message="stalled", details={},
...                    event_ts=1.0)
>>> wire = {**to_wire(alert), "severity": "error"}
>>> rec = SimpleNamespace(topic="t.alerts", partition=0, offset=4, value=msgpack.packb(wire))
>>> read_alert_record(rec).severity
<Severity.ERROR: 'error'>
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from trainsentry.protocol import AlertEvent, decode

from .severity import Severity


class AlertsTopicRecord(Protocol):
    topic: str
    partition: int
    offset: int
    value: bytes | None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert as read from the topic, with where it was."""

    alert: AlertEvent
    severity: Severity
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class NotAnAlert:
    """A record of an alerts topic that is not a valid alert, and why."""

    partition: int
    offset: int
    reason: str


def read_alert_record(record: AlertsTopicRecord) -> AlertRecord | NotAnAlert:
    """The record's alert and severity, or why it has none."""
    value = record.value
    if not value:
        return NotAnAlert(record.partition, record.offset, "empty record")
    try:
        event = decode(value)
    except Exception as exc:  # noqa: BLE001 - a record's content must never stop the reader
        return NotAnAlert(record.partition, record.offset, f"{type(exc).__name__}: {exc}"[:300])
    if not isinstance(event, AlertEvent):
        return NotAnAlert(record.partition, record.offset, f"a {event.type!r} event, not an alert")
    return AlertRecord(event, Severity.parse(event.severity), record.partition, record.offset)
