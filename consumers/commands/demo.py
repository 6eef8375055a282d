"""``trainsentry demo``: the embedded broker, a synthetic training run and the sidecar, live."""

from __future__ import annotations

import argparse
import asyncio

from trainsentry.consumers.commands.options import add_bootstrap_option, bootstrap_given, kafka_properties, positive
from trainsentry.consumers.commands.ui import port_or_zero, serving_error
from trainsentry.protocol.settings import ENV_BOOTSTRAP

NAME = "demo"
HELP = "embedded broker + synthetic training + sidecar, live"
UI_STEP_SECONDS = 0.05


def configure(parser: argparse.ArgumentParser) -> None:
    add_bootstrap_option(parser, f"use this cluster instead of the embedded broker (or ${ENV_BOOTSTRAP})")
    parser.add_argument("--steps", type=positive,
                        help="training steps to simulate (default: the demo's, past the loss's plateau)")
    parser.add_argument("--ui", action="store_true",
                        help="serve the live dashboard beside the demo (trains slower, stays up until Ctrl-C)")
    parser.add_argument("--port", type=port_or_zero, default=None, help="the dashboard's port (with --ui)")


def execute(args: argparse.Namespace) -> int:
    from trainsentry.consumers.demo import run_demo

    options = {} if args.steps is None else {"steps": args.steps}
    cluster = bootstrap_given(args)
    if cluster is not None:  # the embedded broker speaks plaintext: the properties are for a cluster
        properties = kafka_properties(args)
        properties.client_kwargs()  # checked here: a property that cannot be used is one line, exit 2
        options["properties"] = properties
    if args.ui:  # slow enough to watch the curves grow
        from trainsentry.consumers.ui import DashboardOptions
        ui = DashboardOptions() if args.port is None else DashboardOptions(port=args.port)
        options.update(ui=ui, step_seconds=UI_STEP_SECONDS)
        try:
            return asyncio.run(run_demo(cluster, **options))
        except OSError as exc:
            usage = serving_error(exc, ui.bind, ui.port)
            if usage is None:
                raise
            raise usage from None
    return asyncio.run(run_demo(cluster, **options))
