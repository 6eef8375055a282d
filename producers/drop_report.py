"""Say that events were lost, through ``logging``, at most once per interval.

A training loop that publishes every step must not print a warning every step when the broker is
down: the first loss is reported at once, later ones are summed up at most once per interval, and
what is left unreported is said at shutdown.

>>> now = [0.0]
>>> reporter = DropReporter("broker down", interval=60.0, clock=lambda: now[0])
>>> reporter.poll(3), reporter.poll(5)   # first loss at once; the next one waits for the interval
(True, False)
>>> now[0] = 61.0
>>> reporter.poll(5)
True
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger("trainsentry.producers")


class DropReporter:
    """Turns a growing count of lost events into rate-limited warnings."""

    def __init__(self, context: str | Callable[[], str], interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger = log) -> None:
        self._context = context
        self.interval = interval
        self._clock = clock
        self._log = logger
        self._reported = 0
        self._last_report: float | None = None

    def poll(self, total_lost: int) -> bool:
        """Report the events lost since the last report if the interval allows; ``True`` if it did."""
        if total_lost <= self._reported:
            return False
        now = self._clock()
        if self._last_report is not None and now - self._last_report < self.interval:
            return False
        self._emit(total_lost, now)
        return True

    def final(self, total_lost: int) -> bool:
        """At shutdown: report whatever is unreported, whatever the interval."""
        if total_lost <= self._reported:
            return False
        self._emit(total_lost, self._clock())
        return True

    def _emit(self, total_lost: int, now: float) -> None:
        new = total_lost - self._reported
        context = self._context() if callable(self._context) else self._context
        since = "" if self._last_report is None else f" in the last {now - self._last_report:.0f} s"
        self._log.warning("trainsentry: %d events dropped%s (%d in total; training is unaffected): %s",
                          new, since, total_lost, context)
        self._reported = total_lost
        self._last_report = now
