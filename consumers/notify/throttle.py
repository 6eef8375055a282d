"""At most one message per (trial, rule) per ``wait`` seconds; the alerts held back are counted.

A rule re-fires at every saved step, so forwarding each alert would flood a channel. Per key
(trial, rule) a *window* opens when a message goes out and lasts ``wait`` seconds:

- the first alert of a key is sent at once and opens its window;
- an alert inside the window is held back and counted (the newest one is remembered);
- an alert after the window is sent, carrying the count held back ("and 14 more since 10:02");
- when a window closes with alerts held back and no later alert came to carry them, :meth:`due`
  returns a summary of them, which is a message too and opens the next window (so a rule firing
  steadily yields one message per ``wait``); a window that closes with nothing held back is
  dropped, so memory holds only keys active within the last ``wait`` seconds.

Time is given by the caller (the notifier's wall clock), so the logic is tested with any clock.
The state travels as a plain dict (:meth:`state`, :meth:`restore`) so a restart resumes it.

>>> from trainsentry.protocol import AlertEvent
>>> def alert(step):
...     return AlertEvent(trial="run-1", ts=0.0, id=str(step), rule="loss", rule_type="LossNotDecreasing",
...                       mode="TRAIN", step=step, tensors=("loss",), message="stalled", details={}, event_ts=0.0)
>>> t = Throttle(wait_seconds=300)
>>> t.offer(alert(1), Severity.WARNING, now=1000.0) is not None
True
>>> [t.offer(alert(s), Severity.ERROR, now=1000.0 + s) for s in (2, 3)]
[None, None]
>>> t.due(now=1299.0)
[]
>>> [(s.count, s.since, s.worst.value, s.last.step) for s in t.due(now=1300.0)]
[(2, 1000.0, 'error', 3)]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from trainsentry.protocol import AlertEvent

from .severity import Severity

MESSAGE_CHARS_KEPT = 300  # of a held-back alert's message: enough for a summary, small to store


@dataclass(frozen=True, slots=True)
class HeldAlert:
    """What a summary says of the newest alert held back."""

    rule_type: str
    worker: str
    mode: str
    step: int
    message: str


@dataclass(frozen=True, slots=True)
class Carried:
    """Alerts held back since the last message of a key, carried into the next one."""

    count: int
    since: float  # when the last message of the key went out (epoch seconds)
    worst: Severity


@dataclass(frozen=True, slots=True)
class Send:
    """Send this alert now (with what was held back before it, if anything)."""

    alert: AlertEvent
    severity: Severity
    carried: Carried | None


@dataclass(frozen=True, slots=True)
class Summary:
    """A window closed with alerts held back and no later alert to carry them."""

    trial: str
    rule: str
    count: int
    since: float
    worst: Severity
    last: HeldAlert


@dataclass(slots=True)
class _Window:
    opened_at: float
    held: int = 0
    worst: Severity = Severity.INFO
    last: HeldAlert | None = None


class Throttle:
    """The windows of the keys of one stream (one partition of the alerts topic)."""

    def __init__(self, wait_seconds: float) -> None:
        if not wait_seconds >= 0:
            raise ValueError(f"wait_seconds must be >= 0, got {wait_seconds!r}")
        self.wait_seconds = float(wait_seconds)
        self._windows: dict[tuple[str, str], _Window] = {}

    def __len__(self) -> int:
        return len(self._windows)

    def offer(self, alert: AlertEvent, severity: Severity, now: float) -> Send | None:
        """:class:`Send` when the alert goes out now; ``None`` when it is held back and counted."""
        key = (alert.trial, alert.rule)
        window = self._windows.get(key)
        if window is not None and now < window.opened_at + self.wait_seconds:
            window.held += 1
            window.worst = max(window.worst, severity)
            window.last = HeldAlert(alert.rule_type, alert.worker, alert.mode, alert.step,
                                    alert.message[:MESSAGE_CHARS_KEPT])
            return None
        carried = None
        if window is not None and window.held:
            carried = Carried(window.held, window.opened_at, window.worst)
        self._windows[key] = _Window(opened_at=now)
        return Send(alert, severity, carried)

    def due(self, now: float) -> list[Summary]:
        """Summaries of the windows closed by ``now`` with alerts held back; forgets idle keys."""
        summaries: list[Summary] = []
        for key, window in list(self._windows.items()):
            if now < window.opened_at + self.wait_seconds:
                continue
            if window.held and window.last is not None:
                summaries.append(Summary(key[0], key[1], window.held, window.opened_at, window.worst,
                                         window.last))
                self._windows[key] = _Window(opened_at=now)
            else:
                del self._windows[key]
        return summaries

    def held_back(self) -> int:
        """Alerts held back and not yet in any message."""
        return sum(w.held for w in self._windows.values())

    # --- state that outlives the process -------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """The windows as plain data (JSON-ready)."""
        return {"windows": [
            [trial, rule, w.opened_at, w.held, w.worst.value, None if w.last is None else asdict(w.last)]
            for (trial, rule), w in self._windows.items()]}

    def restore(self, state: dict[str, Any]) -> None:
        """Take the windows of :meth:`state` (a malformed entry is skipped)."""
        for entry in state.get("windows", []):
            try:
                trial, rule, opened_at, held, worst, last = entry
                window = _Window(float(opened_at), int(held), Severity.parse(worst),
                                 None if last is None else HeldAlert(**last))
            except (TypeError, ValueError):
                continue
            self._windows[(str(trial), str(rule))] = window
