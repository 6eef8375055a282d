"""What an operator sees of a running sidecar: Prometheus metrics (one registry per sidecar)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class SidecarMetrics:
    """The sidecar's Prometheus metrics; :meth:`serve` exposes them on ``/metrics``."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
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

    def forget_trial(self, trial: str) -> None:
        for gauge in (self.objective_final, self.objective_best):
            _remove(gauge, trial)

    def forget_partition(self, topic: str, partition: int) -> None:
        _remove(self.lag, topic, str(partition))

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        start_http_server(port, addr=addr, registry=self.registry)


def _remove(gauge: Gauge, *labels: str) -> None:
    """Drop one labelled series, if it was ever set."""
    try:
        gauge.remove(*labels)
    except KeyError:
        pass
