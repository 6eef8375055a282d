"""``trainsentry tail``: follow the alerts topic, one readable line (or one JSON object) per alert.

Delivery is at least once, so the same alert can be on the topic twice (a sidecar that crashed
between publishing and committing); ``tail`` shows each alert id once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Callable

from trainsentry.consumers.replay import alert_json
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.topic_reader import read_topics
from trainsentry.protocol import AlertEvent, ProtocolError, decode

log = logging.getLogger("trainsentry.tail")


def alert_line(alert: AlertEvent) -> str:
    """One line a person can act on.

    >>> a = AlertEvent(trial="run-1", ts=1.0, id="ab12", rule="loss", rule_type="LossNotDecreasing",
    ...                mode="TRAIN", step=12, tensors=("loss",), message="loss did not decrease",
    ...                details={}, event_ts=1.0)
    >>> alert_line(a)
    'ALERT loss (LossNotDecreasing) trial=run-1 worker=0 TRAIN step 12 [loss]: loss did not decrease'
    """
    kind = alert.rule if alert.rule == alert.rule_type else f"{alert.rule} ({alert.rule_type})"
    return (f"ALERT {kind} trial={alert.trial} worker={alert.worker} {alert.mode} step {alert.step} "
            f"[{', '.join(alert.tensors)}]: {alert.message}")


async def follow_alerts(settings: KafkaSettings, emit: Callable[[AlertEvent], None], *,
                        trials: set[str] | None = None, follow: bool = True, limit: int | None = None,
                        stop: asyncio.Event | None = None) -> int:
    """Call ``emit`` once per distinct alert id, from the topic's beginning; return how many."""
    stop = stop or asyncio.Event()
    keys = None if trials is None else {t.encode() for t in trials}
    seen: set[str] = set()
    reader = read_topics(settings, [settings.topics.alerts], follow=follow, keys=keys, stop=stop)
    async with contextlib.aclosing(reader):  # closes the consumer at once on an early return
        async for records in reader:
            for record in records:
                try:
                    alert = decode(record.value or b"")
                except ProtocolError as exc:
                    log.warning("skipping %s[%d]@%d: %s", record.topic, record.partition, record.offset, exc)
                    continue
                if not isinstance(alert, AlertEvent) or alert.id in seen:
                    continue
                seen.add(alert.id)
                emit(alert)
                if limit is not None and len(seen) >= limit:
                    stop.set()
                    return len(seen)
    return len(seen)


def printer(as_json: bool) -> Callable[[AlertEvent], None]:
    def emit(alert: AlertEvent) -> None:
        print(alert_json(alert) if as_json else alert_line(alert), flush=True)
    return emit
