"""Following the alerts topic (``trainsentry tail``, the demo): each alert once, as it arrives.

Delivery is at least once, so the same alert can be on the topic twice (a sidecar that crashed
between publishing and committing); ``tail`` shows each alert id once.

Where reading starts (``start``):

- ``"beginning"``: every alert on the topic;
- ``"now"``: the alerts written after the call; since Tansu's end offsets are unreliable, the
  topic is first read to its high watermarks (whatever is there is remembered, not shown) and the
  records past those offsets are the new ones;
- a number (seconds since the epoch): the alerts whose ``ts``, the time their triggering event was
  written, is at or after it; this also holds for a topic that ``replay --publish`` filled later.

A record that is not a valid alert is skipped with a warning (three at most; the rest are counted),
never the end of the reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import IO, Literal

from aiokafka import TopicPartition

from trainsentry.consumers.alert_text import alert_json
from trainsentry.consumers.notify.alert_records import NotAnAlert, read_alert_record
from trainsentry.consumers.notify.filters import AlertFilter
from trainsentry.consumers.notify.severity import Severity
from trainsentry.consumers.printable import printable
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sources.topic_reader import read_topics
from trainsentry.protocol import AlertEvent

log = logging.getLogger("trainsentry.tail")
BAD_RECORDS_LOGGED = 3

Start = Literal["beginning", "now"] | float
STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


async def follow_alerts(settings: KafkaSettings, emit: Callable[[AlertEvent], None], *,
                        trials: set[str] | None = None, follow: bool = True, limit: int | None = None,
                        stop: asyncio.Event | None = None, topic: str | None = None,
                        start: Start = "beginning", alert_filter: AlertFilter | None = None) -> int:
    """Call ``emit`` once per distinct alert id that passes the filter; return how many.

    ``topic`` is the alerts topic by default; ``trials`` narrows the reading to those record keys.
    """
    stop = stop or asyncio.Event()
    topic = topic or settings.topics.alerts
    keys = None if trials is None else {t.encode() for t in trials}
    keep = alert_filter or AlertFilter()
    seen: set[str] = set()
    start_at: dict[TopicPartition, int] = {}
    if start == "now":
        start_at = await _end_positions(settings, topic, keys, seen, stop)
        log.info("following %s from now (%d earlier alert(s) not shown)", topic, len(seen))
    since = start if isinstance(start, (int, float)) else None
    shown = bad = 0
    reader = read_topics(settings, [topic], follow=follow, keys=keys, stop=stop)
    async with contextlib.aclosing(reader):  # closes the consumer at once on an early return
        async for records in reader:
            for record in records:
                if record.offset < start_at.get(TopicPartition(record.topic, record.partition), 0):
                    continue
                item = read_alert_record(record)
                if isinstance(item, NotAnAlert):
                    bad += 1
                    if bad <= BAD_RECORDS_LOGGED:
                        log.warning("skipping %s[%d]@%d: %s", record.topic, item.partition, item.offset,
                                    item.reason)
                    continue
                alert = item.alert
                if alert.id in seen or (since is not None and alert.ts < since) \
                        or not keep.keeps(alert, item.severity):
                    continue
                seen.add(alert.id)
                emit(alert)
                shown += 1
                if limit is not None and shown >= limit:
                    stop.set()
                    return shown
    if bad > BAD_RECORDS_LOGGED:
        log.warning("skipped %d records that were not valid alerts", bad)
    return shown


async def _end_positions(settings: KafkaSettings, topic: str, keys: set[bytes] | None, seen: set[str],
                         stop: asyncio.Event) -> dict[TopicPartition, int]:
    """Read ``topic`` to its high watermarks: where each partition ends now (ids noted in ``seen``)."""
    ends: dict[TopicPartition, int] = {}
    async for records in read_topics(settings, [topic], follow=False, stop=stop):
        for record in records:
            ends[TopicPartition(record.topic, record.partition)] = record.offset + 1
            if keys is None or record.key in keys:
                item = read_alert_record(record)
                if not isinstance(item, NotAnAlert):
                    seen.add(item.alert.id)  # repeated later by a restarted sidecar: still old
    return ends


def tail_line(alert: AlertEvent, tz: tzinfo | None = None) -> str:
    """One line a person can act on: when, how severe, what; every name made printable.

    >>> from datetime import timezone
    >>> a = AlertEvent(trial="run\\n1", ts=1764670445.0, id="ab12", rule="loss", rule_type="LossNotDecreasing",
    ...                mode="TRAIN", step=12, tensors=("loss",), message="loss did not decrease",
    ...                details={}, event_ts=1.0, severity="error")
    >>> tail_line(a, timezone.utc)
    '2025-12-02 10:14:05 ERROR loss (LossNotDecreasing) trial=run\\\\n1 worker=0 TRAIN step 12 [loss]: loss did not decrease'
    """
    kind = printable(alert.rule) if alert.rule == alert.rule_type else \
        f"{printable(alert.rule)} ({printable(alert.rule_type)})"
    tensors = ", ".join(printable(t) for t in alert.tensors)
    return (f"{_timestamp(alert.ts, tz)} {Severity.parse(alert.severity).value.upper()} {kind} "
            f"trial={printable(alert.trial)} worker={printable(alert.worker)} {printable(alert.mode)} "
            f"step {alert.step} [{tensors}]: {printable(alert.message)}")


def _timestamp(ts: float, tz: tzinfo | None) -> str:
    try:
        moment = datetime.fromtimestamp(ts, tz) if tz is not None else datetime.fromtimestamp(ts)
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"ts={ts!r}"


class TailPrinter:
    """Prints alerts as lines (coloured by severity on a terminal, plain when piped) or JSON."""

    def __init__(self, as_json: bool = False, stream: IO[str] | None = None) -> None:
        from rich.console import Console

        self.as_json = as_json
        self.stream = stream or sys.stdout
        # rich decides: a terminal gets colour, a pipe or NO_COLOR none (FORCE_COLOR forces it).
        self._console = Console(file=self.stream, highlight=False, markup=False, emoji=False,
                                soft_wrap=True)
        self.colour = not as_json and self._console.is_terminal and not self._console.no_color

    def __call__(self, alert: AlertEvent) -> None:
        if self.as_json:
            self.stream.write(alert_json(alert) + "\n")
        elif self.colour:
            from rich.text import Text

            self._console.print(Text(tail_line(alert), style=STYLES[Severity.parse(alert.severity)]))
        else:
            self.stream.write(tail_line(alert) + "\n")
        self.stream.flush()
