"""What an operator sees of a running sidecar: Prometheus metrics (one registry per sidecar).

The per-trial objective gauges (final and best value) outlive the trial's release by
``objective_retention_seconds`` (default 5 minutes, longer than any usual scrape interval), so a
scrape every 15-60 s still sees a finished trial's last values; then they are removed, so a
long-running sidecar does not export every trial it ever saw. A trial that comes back (a resumed
run) keeps its gauges.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

from trainsentry.consumers.settings import SidecarOptions

DEFAULT_OBJECTIVE_RETENTION_SECONDS = SidecarOptions.objective_retention_seconds


class SidecarMetrics:
    """The sidecar's Prometheus metrics, in :attr:`registry`; served on ``/metrics`` by
    :class:`~trainsentry.consumers.status_server.StatusServer`."""

    def __init__(self, objective_retention_seconds: float = DEFAULT_OBJECTIVE_RETENTION_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.objective_retention_seconds = objective_retention_seconds
        self._clock = clock
        # Released trial -> when its objective gauges go, soonest first (one retention for all).
        self._expiring: OrderedDict[str, float] = OrderedDict()
        self._expiring_lock = threading.Lock()  # scrapes expire from the HTTP server's thread
        self.registry = r = CollectorRegistry()
        r.register(_ExpireBeforeScrape(self))  # first: a scrape never shows what is due to go
        self.events = Counter("trainsentry_events_consumed", "Records consumed, per topic",
                              ["topic"], registry=r)
        self.lag = Gauge("trainsentry_consumer_lag", "Records behind the high watermark",
                         ["topic", "partition"], registry=r)
        self.evaluation = Histogram(
            "trainsentry_rule_evaluation_seconds", "Engine time per consumed batch",
            buckets=(1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0), registry=r)
        self.batch_events = Histogram(
            "trainsentry_batch_events", "Events per consumed batch",
            buckets=(1, 10, 100, 1000, 10000), registry=r)
        self.alerts = Counter("trainsentry_alerts", "Alerts published, per rule", ["rule"], registry=r)
        self.metric_values = Counter("trainsentry_metric_values", "Metric values parsed from logs",
                                     registry=r)
        self.dead_letters = Counter("trainsentry_dead_letters", "Records sent to the dead-letter topic",
                                    ["topic"], registry=r)
        self.late = Gauge("trainsentry_late_events", "Events that arrived after a later step of their series",
                          registry=r)
        self.duplicates = Gauge("trainsentry_duplicate_events", "Repeated steps and log lines ignored",
                                registry=r)
        self.rebalances = Counter("trainsentry_rebalances", "Partition assignments received", registry=r)
        self.rebuilding = Gauge("trainsentry_rebuilding_partitions",
                                "Partitions being re-read to rebuild window state", registry=r)
        self.state_bytes = Gauge("trainsentry_state_bytes", "Bytes of window state held by the rules",
                                 registry=r)
        self.trials = Gauge("trainsentry_trials", "Trials with state held", registry=r)
        self.objective_final = Gauge("trainsentry_objective_final",
                                     "Last finite value of the objective metric, per trial", ["trial"],
                                     registry=r)
        self.objective_best = Gauge("trainsentry_objective_best",
                                    "Best value of the objective metric in its direction, per trial",
                                    ["trial"], registry=r)
        self.delivery_failures = Counter(
            "trainsentry_delivery_failures", "Output batches the broker did not acknowledge (retried)",
            registry=r)
        # The engine's caps and budgets (docs/rules.md, "Limits"): counts since the start.
        self.evicted_trials = Gauge(
            "trainsentry_evicted_trials", "Trials whose state was let go to keep within a cap, per "
            "cap (trials: max_trials, bytes: max_state_bytes)", ["reason"], registry=r)
        self.refused_series = Gauge(
            "trainsentry_refused_series_events", "Events of series and log streams beyond "
            "max_series_per_trial, ignored", registry=r)
        self.metric_lines_skipped = Gauge(
            "trainsentry_metric_lines_skipped", "Log lines not matched: their batch had spent its "
            "matching budget", registry=r)
        self.implausible_steps = Gauge(
            "trainsentry_implausible_steps", "Events more than 2^32 steps ahead of their series, "
            "ignored", registry=r)

    def set_objective(self, trial: str, final: float, best: float) -> None:
        """Export a trial's objective values (and keep them while the trial is live)."""
        with self._expiring_lock:
            self._expiring.pop(trial, None)
        self.objective_final.labels(trial).set(final)
        self.objective_best.labels(trial).set(best)

    def forget_trial(self, trial: str) -> None:
        """The trial was released: its objective gauges go ``objective_retention_seconds`` later."""
        with self._expiring_lock:
            self._expiring[trial] = self._clock() + self.objective_retention_seconds
            self._expiring.move_to_end(trial)
        self.expire()

    def expire(self) -> None:
        """Remove the objective gauges whose retention has passed."""
        now = self._clock()
        due = []
        with self._expiring_lock:  # from the soonest, up to the first not due: no full scan
            expiring = self._expiring
            while expiring:
                trial, when = next(iter(expiring.items()))
                if when > now:
                    break
                expiring.popitem(last=False)
                due.append(trial)
        for trial in due:
            for gauge in (self.objective_final, self.objective_best):
                _remove(gauge, trial)

    def forget_partition(self, topic: str, partition: int) -> None:
        _remove(self.lag, topic, str(partition))


class _ExpireBeforeScrape:
    """A collector that exports nothing and expires the objective gauges when it is collected."""

    def __init__(self, metrics: SidecarMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        self.metrics.expire()
        return ()


def _remove(gauge: Gauge, *labels: str) -> None:
    """Drop one labelled series, if it was ever set."""
    try:
        gauge.remove(*labels)
    except KeyError:
        pass
