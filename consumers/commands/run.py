"""``trainsentry run``: the live sidecar (consume tensors and logs, publish alerts and metrics)."""

from __future__ import annotations

import argparse

from trainsentry.consumers.commands.errors import UsageError
from trainsentry.consumers.commands.options import (
    add_kafka_options,
    add_sink_option,
    default_of,
    extra_sinks,
    kafka_settings,
    port,
    positive,
)
from trainsentry.consumers.commands.until_signal import run_until_signal
from trainsentry.consumers.health import ProbeLimits
from trainsentry.consumers.settings import DEFAULT_METRICS_BIND, KafkaSettings, SidecarOptions

NAME = "run"
HELP = "run the sidecar: consume tensors and logs, publish alerts"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="rules configuration (.toml or SageMaker .json)")
    add_kafka_options(parser)
    parser.add_argument("--group-id", default=default_of(KafkaSettings, "group_id"),
                        help="consumer group shared by sidecars (default %(default)s)")
    parser.add_argument("--metrics-port", type=port, help=(
        "serve Prometheus metrics on /metrics of this port, and the probes: /healthz (the event "
        "loop turns) and /readyz (in the group, assigned partitions rebuilt, the broker answers)"))
    parser.add_argument("--metrics-bind", default=DEFAULT_METRICS_BIND, metavar="ADDR", help=(
        "address of --metrics-port (default %(default)s: this machine only; 0.0.0.0 in a container "
        "that Prometheus or the kubelet probes)"))
    parser.add_argument("--stalled-loop-seconds", type=float,
                        default=default_of(ProbeLimits, "stalled_after_s"),
                        help="/healthz fails once the event loop has not turned for this long "
                             "(default %(default)s)")
    parser.add_argument("--objective-retention-seconds", type=float,
                        default=default_of(SidecarOptions, "objective_retention_seconds"),
                        help="keep a released trial's objective gauges this long, so the last scrapes "
                             "see its final values (default %(default)s)")
    parser.add_argument("--max-batch-records", type=positive,
                        default=default_of(KafkaSettings, "max_batch_records"),
                        help="records evaluated per batch at most (bounds the time between heartbeats; "
                             "default %(default)s)")
    parser.add_argument("--session-timeout-ms", type=positive,
                        default=default_of(KafkaSettings, "session_timeout_ms"),
                        help="a member silent this long leaves the group; raise it for a slow "
                             "coordinator or for batches that keep the loop busy for seconds (on "
                             "Tansu a join takes about half of it; default %(default)s)")
    parser.add_argument("--rebalance-timeout-ms", type=positive, help=(
        "how long the coordinator waits for every member to rejoin in a rebalance (default: the "
        "session timeout); raise it for a slow coordinator"))
    parser.add_argument("--group-instance-id", metavar="ID", help=(
        "static membership: a sidecar restarted under the same ID within the session timeout takes "
        "its partitions back without a rebalance (one stable ID per sidecar, e.g. a StatefulSet "
        "pod's name; two running sidecars must never share one)"))
    parser.add_argument("--idle-trial-seconds", type=float,
                        default=default_of(SidecarOptions, "idle_trial_seconds"),
                        help="release a trial's state after this long without events (0: never; "
                             "default %(default)s)")
    parser.add_argument("--ended-trial-grace-seconds", type=float,
                        default=default_of(SidecarOptions, "ended_trial_grace_seconds"),
                        help="after every worker of a trial sent its end marker, release its state "
                             "once it has had no events for this long (default %(default)s)")
    parser.add_argument("--snapshot-interval-records", type=positive, metavar="N",
                        default=default_of(SidecarOptions, "snapshot_interval_records"),
                        help="snapshot a partition's state to the snapshots topic once it has "
                             "evaluated this many records since its last snapshot; a member gaining "
                             "the partition reads only the records after it (default %(default)s)")
    parser.add_argument("--snapshot-interval-seconds", type=float, metavar="SECONDS",
                        default=default_of(SidecarOptions, "snapshot_interval_seconds"),
                        help="... or once this many seconds have passed and it evaluated any "
                             "(default %(default)s)")
    parser.add_argument("--no-snapshots", dest="snapshots", action="store_false",
                        help="take no snapshots and restore none: a member gaining a partition reads "
                             "it from its beginning")
    _add_limit_options(parser)
    add_sink_option(parser, "the alerts, besides the alerts topic,")


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    """The engine's caps and budgets (docs/rules.md, "Limits")."""
    from trainsentry.consumers.engine.limits import EngineLimits

    parser.add_argument("--max-trials", type=positive, default=default_of(EngineLimits, "max_trials"),
                        help="trials held at once; beyond it the least recently active one's state "
                             "is let go (default %(default)s)")
    parser.add_argument("--max-series-per-trial", type=positive,
                        default=default_of(EngineLimits, "max_series_per_trial"),
                        help="series and log streams of one trial; events of further ones are "
                             "counted and ignored (default %(default)s)")
    parser.add_argument("--max-state-bytes", type=positive,
                        default=default_of(EngineLimits, "max_state_bytes"),
                        help="bytes of state held; beyond it the least recently active trials are "
                             "let go (default %(default)s)")
    parser.add_argument("--metric-batch-budget-ms", type=positive,
                        default=int(default_of(EngineLimits, "metric_batch_budget_ms")),
                        help="matching time of the metric definitions per batch, at most a quarter "
                             "of --session-timeout-ms (default %(default)s)")


def execute(args: argparse.Namespace) -> int:
    from trainsentry.consumers.engine import Engine
    from trainsentry.consumers.engine.limits import EngineLimits
    from trainsentry.consumers.health import Health
    from trainsentry.consumers.observability import SidecarMetrics
    from trainsentry.consumers.sidecar import Sidecar
    from trainsentry.consumers.status_server import StatusServer
    from trainsentry.rules.config import load_config

    engine = Engine(load_config(args.config), EngineLimits(
        max_trials=args.max_trials, max_series_per_trial=args.max_series_per_trial,
        max_state_bytes=args.max_state_bytes,
        # A batch must end well within the session timeout, whatever the regexes do.
        metric_batch_budget_ms=min(args.metric_batch_budget_ms, args.session_timeout_ms / 4)))
    settings = kafka_settings(args, group_id=args.group_id, session_timeout_ms=args.session_timeout_ms,
                              heartbeat_interval_ms=max(100, args.session_timeout_ms // 3),
                              rebalance_timeout_ms=args.rebalance_timeout_ms,
                              group_instance_id=args.group_instance_id,
                              max_batch_records=args.max_batch_records)
    sinks = extra_sinks(args, settings)
    metrics = SidecarMetrics(objective_retention_seconds=max(0.0, args.objective_retention_seconds))
    if not args.stalled_loop_seconds > 0:
        raise UsageError(f"--stalled-loop-seconds: expected seconds > 0, got {args.stalled_loop_seconds!r}")
    health = Health(ProbeLimits(stalled_after_s=args.stalled_loop_seconds))
    if args.metrics_port is not None:
        try:
            StatusServer(metrics.registry, health, args.metrics_port, args.metrics_bind)
        except OSError as exc:  # in use, an address this machine does not have, ...
            raise UsageError(f"--metrics-port: cannot listen on port {args.metrics_port} of "
                             f"{args.metrics_bind}: {exc.strerror or exc}") from None
    if not args.snapshot_interval_seconds > 0:
        raise UsageError(f"--snapshot-interval-seconds: expected seconds > 0, got "
                         f"{args.snapshot_interval_seconds!r}")
    options = SidecarOptions(idle_trial_seconds=args.idle_trial_seconds or None,
                             ended_trial_grace_seconds=args.ended_trial_grace_seconds,
                             snapshots=args.snapshots,
                             snapshot_interval_records=args.snapshot_interval_records,
                             snapshot_interval_seconds=args.snapshot_interval_seconds)
    # aiokafka clients are made inside the running loop
    return run_until_signal(lambda stop: Sidecar(engine, settings, options, metrics, sinks, health).run(stop))

