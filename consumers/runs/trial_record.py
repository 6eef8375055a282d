"""What has been seen of one trial: its workers and modes, its curves, its alerts, in bounded memory.

Curves are keyed by :class:`SeriesKey` (kind, name, worker, mode). Kinds: ``scalar`` (scalar
events and one-element tensors, by step within their mode), ``metric`` (metric events, by their
step, mode ``GLOBAL`` as the engine evaluates them) and the statistics of
:mod:`~trainsentry.consumers.runs.layer_stats` (one curve per statistic of a weight or gradient).

Bounds (:class:`Limits`): points per curve (decimated), curves per trial (further ones are counted
and dropped), alerts kept per trial (the newest; counts cover all of them), new points and alerts
waiting for the live feed (past that the feed is told to start again from a snapshot).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, NamedTuple

from trainsentry.protocol import AlertEvent, to_wire

from .series import DecimatedSeries, json_value

SEVERITIES = ("error", "warning", "info")
DEFAULT_SEVERITY = "warning"  # an alert without a severity (docs/protocol.md: it is optional)


@dataclass(frozen=True)
class Limits:
    """How much is kept; the worst case is about trials x series x 2 x points x 16 bytes."""

    trials: int = 100
    series_per_trial: int = 256
    points_per_series: int = 512   # after a decimation; at most twice as many are held
    alerts_per_trial: int = 500
    pending_changes: int = 20_000  # points and alerts not yet sent live, per trial

    def __post_init__(self) -> None:
        for name in ("trials", "series_per_trial", "alerts_per_trial", "pending_changes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected at least 1, got {getattr(self, name)}")
        if self.points_per_series < 2:
            raise ValueError(f"points_per_series: expected at least 2, got {self.points_per_series}")


class SeriesKey(NamedTuple):
    kind: str    # "scalar", "metric" or a layer statistic ("norm", "mean_abs", ...)
    name: str    # the scalar, metric or tensor name
    worker: str
    mode: str


@dataclass
class TrialChanges:
    """What a trial gained since the live feed last asked: new points, new alerts, or "start again"."""

    points: list[tuple[int, int, float | None]]  # (series id, step, value)
    series: list[dict[str, Any]]                 # series first seen in the meantime
    alerts: list[dict[str, Any]]
    reset: bool                                  # too much piled up: reload the whole trial


def severity_of(alert: AlertEvent) -> str:
    """The alert's severity if it names a known one, else :data:`DEFAULT_SEVERITY`."""
    severity = getattr(alert, "severity", None)
    return severity if severity in SEVERITIES else DEFAULT_SEVERITY


def alert_json(alert: AlertEvent) -> dict[str, Any]:
    """An alert as the dashboard and the report show it: every field, plus its severity."""
    wire = to_wire(alert)
    wire.pop("v", None)
    wire["severity"] = severity_of(alert)
    return _finite(wire)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return json_value(value)
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


class TrialRecord:
    """One trial's workers, modes, curves and alerts."""

    def __init__(self, trial: str, limits: Limits) -> None:
        self.trial = trial
        self.limits = limits
        self.workers: dict[str, bool] = {}   # worker -> sent its end marker
        self.modes: set[str] = set()
        self.first_ts: float | None = None
        self.last_ts: float | None = None
        self.last_step: int | None = None    # newest global step of a tensor or scalar
        self.events = 0
        self.series: dict[SeriesKey, DecimatedSeries] = {}
        self._series_ids: dict[SeriesKey, int] = {}
        self.series_dropped = 0               # events of curves past the limit
        self.alerts: deque[AlertEvent] = deque(maxlen=limits.alerts_per_trial)
        self._alert_ids: OrderedDict[str, None] = OrderedDict()  # recent ids: at-least-once repeats
        self.alert_counts: dict[str, int] = dict.fromkeys(SEVERITIES, 0)
        self.alerts_by_rule: dict[str, int] = {}
        self._pending_points: list[tuple[int, int, float | None]] = []
        self._pending_series: list[dict[str, Any]] = []
        self._pending_alerts: list[dict[str, Any]] = []
        self._pending_reset = False

    # --- what comes in ---------------------------------------------------------------------

    def saw(self, worker: str, ts: float, mode: str | None = None, step: int | None = None) -> None:
        """Any event of ``worker`` written at ``ts``; ``mode`` and global ``step`` for values."""
        self.events += 1
        self.workers.setdefault(worker, False)
        if mode is not None:
            self.modes.add(mode)
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts
        if step is not None and (self.last_step is None or step > self.last_step):
            self.last_step = step

    def ended(self, worker: str) -> None:
        self.workers[worker] = True

    def add_point(self, key: SeriesKey, step: int, value: float) -> None:
        series = self.series.get(key)
        if series is None:
            if len(self.series) >= self.limits.series_per_trial:
                self.series_dropped += 1
                return
            series = self.series[key] = DecimatedSeries(self.limits.points_per_series)
            self._series_ids[key] = len(self._series_ids)
            self._pend(self._pending_series, self.series_json(key, series, points=False))
        if series.append(step, value):
            self._pend(self._pending_points, (self._series_ids[key], step, json_value(value)))

    def add_alert(self, alert: AlertEvent) -> bool:
        """Keep a new alert; ``False`` for a repeat of a recent one (delivery is at least once)."""
        if alert.id in self._alert_ids:
            return False
        self._alert_ids[alert.id] = None
        if len(self._alert_ids) > 4 * self.limits.alerts_per_trial:
            self._alert_ids.popitem(last=False)
        self.alerts.append(alert)
        severity = severity_of(alert)
        self.alert_counts[severity] += 1
        self.alerts_by_rule[alert.rule] = self.alerts_by_rule.get(alert.rule, 0) + 1
        self._pend(self._pending_alerts, alert_json(alert))
        return True

    # --- what goes out ---------------------------------------------------------------------

    def status(self, now: float, stalled_after: float) -> str:
        """``ended`` (every worker sent its end marker), ``stalled`` (quiet too long) or ``running``."""
        if self.workers and all(self.workers.values()):
            return "ended"
        if self.last_ts is not None and now - self.last_ts > stalled_after:
            return "stalled"
        return "running"

    def series_json(self, key: SeriesKey, series: DecimatedSeries, points: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self._series_ids[key], **key._asdict(), "total": series.total}
        if points:
            out["steps"] = series.steps()
            out["values"] = [json_value(v) for v in series.values()]
        return out

    def snapshot(self) -> dict[str, Any]:
        """Every curve with its points and every kept alert, oldest first."""
        return {
            "series": [self.series_json(k, s) for k, s in self.series.items()],
            "alerts": [alert_json(a) for a in self.alerts],
            "series_dropped": self.series_dropped,
        }

    def drain_changes(self) -> TrialChanges | None:
        """What is new since the last call, or ``None`` if nothing is."""
        if not (self._pending_points or self._pending_series or self._pending_alerts or self._pending_reset):
            return None
        changes = TrialChanges(self._pending_points, self._pending_series, self._pending_alerts,
                               self._pending_reset)
        self._pending_points, self._pending_series, self._pending_alerts = [], [], []
        self._pending_reset = False
        return changes

    def _pend(self, pending: list, item: Any) -> None:
        if self._pending_reset:
            return
        if len(self._pending_points) + len(self._pending_alerts) >= self.limits.pending_changes:
            # Nobody drained for a while: drop the backlog, the live feed reloads a snapshot.
            self._pending_points, self._pending_series, self._pending_alerts = [], [], []
            self._pending_reset = True
            return
        pending.append(item)

    def nbytes(self) -> int:
        """Approximate bytes held by the curves (the bulk of a trial)."""
        return sum(s.nbytes() for s in self.series.values())
