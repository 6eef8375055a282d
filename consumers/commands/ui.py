"""``trainsentry ui``: the live dashboard over the tensors, logs, metrics and alerts topics.

Served on loopback by default (the dashboard has no login): ``--bind 0.0.0.0`` shows it to the
network, deliberately. ``--config`` is optional: the sidecar's configuration, read for the
objective's direction (``best`` is the lowest value without it).
"""

from __future__ import annotations

import argparse
import errno

from trainsentry.consumers.commands.errors import UsageError, report
from trainsentry.consumers.commands.options import add_kafka_options, kafka_settings, port, positive
from trainsentry.consumers.commands.until_signal import run_until_signal

NAME = "ui"
HELP = "serve the live dashboard: runs, curves with alert markers, weight and gradient statistics"


def configure(parser: argparse.ArgumentParser) -> None:
    from trainsentry.consumers.runs.run_collection import DEFAULT_STALLED_AFTER
    from trainsentry.consumers.runs.trial_record import Limits
    from trainsentry.consumers.ui.dashboard import DEFAULT_BIND, DEFAULT_PORT

    add_kafka_options(parser)
    parser.add_argument("--port", type=port_or_zero, default=DEFAULT_PORT,
                        help="port to serve on (0: any free port; default %(default)s)")
    parser.add_argument("--bind", default=DEFAULT_BIND, metavar="ADDR",
                        help="address to serve on (default %(default)s: this machine only)")
    parser.add_argument("--config", help="the sidecar's rules configuration, for the objective's direction")
    parser.add_argument("--stalled-after", type=float, default=DEFAULT_STALLED_AFTER, metavar="SECONDS",
                        help="a trial with no event for this long, not ended, is 'stalled' (default %(default)s)")
    parser.add_argument("--max-trials", type=positive, default=Limits.trials,
                        help="trials held at most; the quietest go first (default %(default)s)")
    parser.add_argument("--points-per-series", type=positive, default=Limits.points_per_series,
                        help="points kept per curve after decimation (default %(default)s)")


def port_or_zero(text: str) -> int:
    """A TCP port, or 0 for any free one."""
    return 0 if text == "0" else port(text)


def serving_error(exc: OSError, bind: str, port_number: int) -> UsageError | None:
    """The one line for an address the dashboard cannot listen on; ``None`` for other errors."""
    if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
        return UsageError(f"--port/--bind: cannot serve on {bind}:{port_number}: {exc.strerror or exc}")
    return None


def execute(args: argparse.Namespace) -> int:
    from trainsentry.consumers.runs.trial_record import Limits
    from trainsentry.consumers.ui.dashboard import DashboardOptions, run_dashboard

    if not args.stalled_after > 0:
        raise UsageError(f"--stalled-after: expected seconds > 0, got {args.stalled_after!r}")
    if args.points_per_series < 2:
        raise UsageError(f"--points-per-series: expected at least 2, got {args.points_per_series}")
    objective_type = "Minimize"
    if args.config:
        from trainsentry.rules.config import load_config
        config = load_config(args.config)
        if config.objective is not None:
            objective_type = config.objective.type
    settings = kafka_settings(args)
    options = DashboardOptions(bind=args.bind, port=args.port, stalled_after=args.stalled_after,
                               objective_type=objective_type,
                               limits=Limits(trials=args.max_trials, points_per_series=args.points_per_series))

    async def serve(stop) -> None:
        try:
            await run_dashboard(settings, options, stop, on_ready=lambda url: report(
                f"dashboard at {url} (topics {settings.topics.prefix}.* at {settings.bootstrap_servers}); "
                "Ctrl-C to stop"))
        except OSError as exc:
            usage = serving_error(exc, args.bind, args.port)
            if usage is None:
                raise
            raise usage from None

    return run_until_signal(serve)
