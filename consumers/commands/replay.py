"""``trainsentry replay``: the rules over recorded events (postmortem), from files or the topics.

With ``--input FILE`` no broker is involved and aiokafka is never imported: the files' events go
through the same driver and engine as the live sidecar's, into a JSON-lines file or stdout.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from trainsentry.consumers.commands.errors import EXIT_OK, UsageError, report
from trainsentry.consumers.commands.options import (
    add_kafka_options,
    add_sink_option,
    bootstrap_given,
    extra_sinks,
    kafka_settings,
    time_value,
)
from trainsentry.protocol.settings import ENV_BOOTSTRAP

if TYPE_CHECKING:
    from trainsentry.consumers.replay import ReplaySummary
    from trainsentry.consumers.sinks.base import Sink
    from trainsentry.rules.objective import ObjectiveTracker

NAME = "replay"
HELP = "run the rules over recorded events (postmortem)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", action="append", default=[], metavar="FILE", help="replay file (repeatable)")
    parser.add_argument("--config", required=True)
    parser.add_argument("--output", help="alerts as JSON lines ('-' for stdout)")
    parser.add_argument("--publish", metavar="TOPIC", help="publish the alerts to this topic instead")
    parser.add_argument("--trial", action="append", default=[], help="only this trial (repeatable)")
    parser.add_argument("--since", type=time_value,
                        help="only events with ts >= TIME (epoch seconds or ISO 8601)")
    parser.add_argument("--until", type=time_value, help="only events with ts <= TIME")
    add_kafka_options(parser)
    add_sink_option(parser, "the alerts")


def execute(args: argparse.Namespace) -> int:
    from trainsentry.consumers.engine import Engine
    from trainsentry.consumers.progress import CommandProgress
    from trainsentry.consumers.replay import EventFilter, ReplaySummary, replay_files, replay_topics
    from trainsentry.rules.config import load_config

    if args.input and args.bootstrap_servers and not args.publish:
        raise UsageError("replay reads --input FILE ... or the topics at --bootstrap-servers, not "
                         "both (with --input, --bootstrap-servers is where --publish writes)")
    if not args.input and not bootstrap_given(args):
        raise UsageError(f"replay needs --input FILE ... or --bootstrap-servers HOST:PORT (or ${ENV_BOOTSTRAP})")
    if bool(args.output) == bool(args.publish):
        raise UsageError("replay needs one of --output FILE and --publish TOPIC")
    engine = Engine(load_config(args.config))
    for path in args.input:
        if not Path(path).is_file():
            raise UsageError(f"--input: no such file: {path}")
    uses_kafka = not args.input or args.publish or any(s.partition(":")[0] == "kafka" for s in args.sink)
    settings = kafka_settings(args) if uses_kafka else None
    sinks = [_alerts_sink(args, settings), *extra_sinks(args, settings)]
    keep = EventFilter(frozenset(args.trial) if args.trial else None, args.since, args.until)
    summary = ReplaySummary()
    progress = CommandProgress("replay", unit="bytes" if args.input else "offsets",
                               events=lambda: summary.events, alerts=lambda: summary.alerts)

    async def replay() -> None:
        if args.publish:
            from trainsentry.consumers.broker import ensure_topics
            await ensure_topics(settings, [args.publish])
        with progress:
            if args.input:
                await replay_files(engine, args.input, sinks, keep, summary, progress)
            else:
                await replay_topics(engine, settings, sinks, keep, summary, progress)

    asyncio.run(replay())
    # The ranking below names the trials that never emitted the objective: said once, there.
    ranked = tuple(f"trial {trial!r} never emitted the objective"
                   for trial in (engine.objectives.never_emitted() if engine.objectives else ()))
    for notice in engine.drain_notices():
        if not (ranked and notice.startswith(ranked)):
            progress.notice(notice)
    _report_summary(summary, args.publish or args.output)
    if engine.objectives is not None:
        _report_ranking(engine.objectives)
    return EXIT_OK


def _alerts_sink(args: argparse.Namespace, settings) -> Sink:
    """Where ``--output`` or ``--publish`` sends the alerts."""
    if args.publish:
        from trainsentry.consumers.sinks.kafka import KafkaSink
        from trainsentry.protocol import AlertEvent
        return KafkaSink(settings, {AlertEvent: args.publish})
    if args.output == "-":
        from trainsentry.consumers.sinks.console import ConsoleSink
        return ConsoleSink(as_json=True)
    from trainsentry.consumers.output_file import OutputFileError
    from trainsentry.consumers.sinks.json_lines import JsonLinesSink
    try:
        return JsonLinesSink(args.output)
    except OutputFileError as exc:
        raise UsageError(f"--output: {exc}") from None


def _report_summary(summary: ReplaySummary, target: str) -> None:
    report(f"replayed {summary.events} events ({summary.filtered_out} filtered out, "
           f"{summary.recomputed_skipped} metric/alert events skipped, {summary.invalid} invalid); "
           f"{summary.alerts} alerts to {target}")
    for reason in summary.reasons:
        report(f"invalid: {reason}")
    for path, offset in summary.undecodable:
        report(f"{path}: undecodable bytes at offset {offset}; the rest of that file was not read")


def _report_ranking(objectives: ObjectiveTracker) -> None:
    """The trials ranked by their objective's final value, as SageMaker tuning reports it."""
    objective = objectives.objective
    report(f"objective {objective.metric} ({objective.type}), trials by final value:")
    for rank, result in enumerate(objectives.ranking(), 1):
        report(f"  {rank}. {result.trial}: final {result.final:g} (step {result.final_step}), "
               f"best {result.best:g} (step {result.best_step})")
    for trial in objectives.never_emitted():
        report(f"  {trial}: never emitted {objective.metric}")
