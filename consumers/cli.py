"""The ``trainsentry`` command: run the sidecar, follow alerts, replay, record, tap, demo.

Every user error (missing file, bad configuration, unreachable cluster) is one line on stderr and a
non-zero exit code, never a traceback: 2 for bad input or configuration, 1 for a broker problem.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Awaitable, Callable, Iterable, Sequence

from aiokafka.errors import KafkaError

from trainsentry.consumers.broker import BrokerError, bootstrap_from_env
from trainsentry.consumers.settings import DEFAULT_GROUP, KafkaSettings
from trainsentry.protocol import AlertEvent, Event, Topics
from trainsentry.protocol.settings import DEFAULT_BOOTSTRAP, ENV_BOOTSTRAP, ENV_TOPIC_PREFIX
from trainsentry.rules.base import ConfigError

if TYPE_CHECKING:  # the commands import what they use when they run, to start fast
    from trainsentry.consumers.engine import Engine
    from trainsentry.consumers.replay import EventFilter, ReplaySummary
    from trainsentry.rules.config import Config
    from trainsentry.rules.objective import ObjectiveTracker

PROG = "trainsentry"


class UsageError(Exception):
    """Bad input from the user (exit code 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "tap":  # everything after `--` belongs to the command being tapped
        from trainsentry.producers.tap import main as tap_main
        return tap_main(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiokafka logs every failed connection attempt; our own lines say what it means for the user.
    logging.getLogger("aiokafka").setLevel(logging.DEBUG if args.log_level == "DEBUG" else logging.CRITICAL)
    try:
        return args.handler(args)
    except (ConfigError, UsageError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except BrokerError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KafkaError as exc:  # the cluster went away or refused us after the first contact
        print(f"{PROG}: error: Kafka: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# --- commands -----------------------------------------------------------------------------------

def cmd_run(args: argparse.Namespace) -> int:
    from trainsentry.consumers.engine import Engine
    from trainsentry.consumers.observability import SidecarMetrics
    from trainsentry.consumers.sidecar import Sidecar, SidecarOptions

    engine = Engine(_load_config(args.config))
    settings = _kafka(args, group_id=args.group_id, session_timeout_ms=args.session_timeout_ms,
                      heartbeat_interval_ms=max(100, args.session_timeout_ms // 3),
                      max_batch_records=args.max_batch_records)
    metrics = SidecarMetrics()
    if args.metrics_port is not None:
        try:
            metrics.serve(args.metrics_port)
        except OSError as exc:
            raise UsageError(f"--metrics-port: cannot listen on port {args.metrics_port}: "
                             f"{exc.strerror or exc}") from None
    options = SidecarOptions(idle_trial_seconds=args.idle_trial_seconds or None,
                             ended_trial_grace_seconds=args.ended_trial_grace_seconds)
    # aiokafka clients are made inside the running loop
    return _run_until_signal(lambda stop: Sidecar(engine, settings, options, metrics).run(stop))


def cmd_tail(args: argparse.Namespace) -> int:
    from trainsentry.consumers.tail import follow_alerts, printer

    settings = _kafka(args)

    async def tail(stop: asyncio.Event) -> None:
        await follow_alerts(settings, printer(args.json), trials=set(args.trial) or None,
                            follow=not args.no_follow, limit=args.max_alerts, stop=stop)
    return _run_until_signal(tail)


def cmd_replay(args: argparse.Namespace) -> int:
    from trainsentry.consumers.engine import Engine
    from trainsentry.consumers.replay import (
        EventFilter, ReplaySummary, file_events, run_engine, write_alerts,
    )

    if args.input and args.bootstrap_servers and not args.publish:
        raise UsageError("replay reads --input FILE ... or the topics at --bootstrap-servers, not "
                         "both (with --input, --bootstrap-servers is where --publish writes)")
    if not args.input and not bootstrap_from_env(args.bootstrap_servers):
        raise UsageError(f"replay needs --input FILE ... or --bootstrap-servers HOST:PORT (or ${ENV_BOOTSTRAP})")
    if bool(args.output) == bool(args.publish):
        raise UsageError("replay needs one of --output FILE and --publish TOPIC")
    engine = Engine(_load_config(args.config))
    keep = EventFilter(frozenset(args.trial) if args.trial else None, args.since, args.until)
    summary = ReplaySummary()
    for path in args.input:
        if not Path(path).is_file():
            raise UsageError(f"--input: no such file: {path}")
    collected: list[AlertEvent] = []  # alerts to publish, once the replay is done
    with contextlib.ExitStack() as stack:
        if args.publish:
            def emit(outputs: Iterable[Event]) -> int:
                before = len(collected)
                collected.extend(o for o in outputs if isinstance(o, AlertEvent))
                return len(collected) - before
        else:
            stream = stack.enter_context(_open_output(args.output))

            def emit(outputs: Iterable[Event]) -> int:
                return write_alerts(outputs, stream)
        if args.input:
            count = emit(run_engine(engine, file_events(args.input, summary), keep, summary))
        else:
            count = asyncio.run(_replay_topics(_kafka(args), engine, keep, summary, emit))
    if args.publish:
        count = asyncio.run(_publish_alerts(_kafka(args), args.publish, collected))
    for notice in engine.drain_notices():
        print(f"{PROG}: {notice}", file=sys.stderr)
    _print_summary(summary, count, args.publish or args.output)
    if engine.objectives is not None:
        _print_ranking(engine.objectives)
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from trainsentry.consumers.record import record_topics

    settings = _kafka(args)
    if args.output == "-":
        written = asyncio.run(record_topics(settings, sys.stdout.buffer, set(args.trial) or None))
    else:
        # Written beside the target and renamed at the end: a failed recording leaves the old file.
        partial = f"{args.output}.partial"
        with _open_output(partial, binary=True) as stream:
            try:
                written = asyncio.run(record_topics(settings, stream, set(args.trial) or None))
            except BaseException:
                Path(partial).unlink(missing_ok=True)
                raise
        os.replace(partial, args.output)
    print(f"{PROG}: recorded {written} events to {args.output}", file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from trainsentry.consumers.demo import run_demo

    return asyncio.run(run_demo(bootstrap_from_env(args.bootstrap_servers), steps=args.steps))


# --- shared by the commands ---------------------------------------------------------------------

def _load_config(path: str) -> "Config":
    from trainsentry.rules.config import load_config
    return load_config(path)


def _kafka(args: argparse.Namespace, **overrides: object) -> KafkaSettings:
    servers = bootstrap_from_env(getattr(args, "bootstrap_servers", None)) or DEFAULT_BOOTSTRAP
    if any(not part.rpartition(":")[2].isdigit() for part in servers.split(",")):
        raise UsageError(f"--bootstrap-servers: expected HOST:PORT[,HOST:PORT...], got {servers!r}")
    return KafkaSettings(bootstrap_servers=servers, topics=Topics.from_env(args.topic_prefix),
                         fetch_max_wait_ms=args.fetch_max_wait_ms, **overrides)


def _run_until_signal(body: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """Run ``body(stop)``; SIGINT and SIGTERM set ``stop`` so it can finish cleanly, then exit 0."""
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await body(stop)
    asyncio.run(runner())
    return 0


async def _replay_topics(settings: KafkaSettings, engine: "Engine", keep: "EventFilter",
                         summary: "ReplaySummary", emit: Callable[[Iterable[Event]], int]) -> int:
    from trainsentry.consumers.replay import topic_outputs

    count = 0
    async for outputs in topic_outputs(settings, engine, keep, summary):
        count += emit(outputs)
    return count


async def _publish_alerts(settings: KafkaSettings, topic: str, alerts: list[AlertEvent]) -> int:
    from aiokafka import AIOKafkaProducer

    from trainsentry.consumers.broker import ensure_topics
    from trainsentry.protocol import encode

    await ensure_topics(settings.bootstrap_servers, [topic])
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for alert in alerts:
            await producer.send(topic, encode(alert), key=alert.trial.encode())
        await producer.flush()
    finally:
        await producer.stop()
    return len(alerts)


@contextlib.contextmanager
def _open_output(path: str, binary: bool = False):
    if path == "-":
        yield sys.stdout.buffer if binary else sys.stdout
        return
    try:
        stream = open(path, "wb" if binary else "w", encoding=None if binary else "utf-8")
    except OSError as exc:
        raise UsageError(f"--output: cannot write {path}: {exc.strerror}") from None
    with stream:
        yield stream


def _print_summary(summary: "ReplaySummary", alerts: int, target: str) -> None:
    print(f"{PROG}: replayed {summary.events} events ({summary.filtered_out} filtered out, "
          f"{summary.recomputed_skipped} metric/alert events skipped, {summary.invalid} invalid); "
          f"{alerts} alerts to {target}", file=sys.stderr)
    for reason in summary.reasons:
        print(f"{PROG}: invalid: {reason}", file=sys.stderr)
    for path, offset in summary.undecodable:
        print(f"{PROG}: {path}: undecodable bytes at offset {offset}; the rest of that file was not read",
              file=sys.stderr)


def _print_ranking(objectives: "ObjectiveTracker") -> None:
    """The trials ranked by their objective's final value, as SageMaker tuning reports it."""
    objective = objectives.objective
    print(f"{PROG}: objective {objective.metric} ({objective.type}), trials by final value:",
          file=sys.stderr)
    for rank, result in enumerate(objectives.ranking(), 1):
        print(f"{PROG}:   {rank}. {result.trial}: final {result.final:g} (step {result.final_step}), "
              f"best {result.best:g} (step {result.best_step})", file=sys.stderr)
    for trial in objectives.never_emitted():
        print(f"{PROG}:   {trial}: never emitted {objective.metric}", file=sys.stderr)


def _port(text: str) -> int:
    port = _positive(text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 1..65535, got {text!r}")
    return port


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _time(text: str) -> float:
    """Seconds since the epoch, or an ISO 8601 time (UTC unless it says otherwise)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected seconds since the epoch or an ISO 8601 time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=(
        "A Kafka-native debugger for neural-network training. "
        "`trainsentry tap --trial ID -- COMMAND ...` runs a command and publishes its output."))
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = commands.add_parser

    def command(name: str, **kwargs: object) -> argparse.ArgumentParser:
        return add(name, parents=[common], **kwargs)

    def kafka_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--bootstrap-servers", metavar="HOST:PORT",
                       help=f"Kafka cluster (default: ${ENV_BOOTSTRAP}, else {DEFAULT_BOOTSTRAP})")
        p.add_argument("--topic-prefix", help=f"topic name prefix (default: ${ENV_TOPIC_PREFIX}, else "
                                                    f"{Topics().prefix})")
        p.add_argument("--fetch-max-wait-ms", type=int, default=20,
                       help="longest wait of one fetch (the delivery latency on Tansu)")

    run = command("run", help="run the sidecar: consume tensors and logs, publish alerts")
    run.add_argument("--config", required=True, help="rules configuration (.toml or SageMaker .json)")
    kafka_options(run)
    run.add_argument("--group-id", default=DEFAULT_GROUP, help="consumer group shared by sidecars")
    run.add_argument("--metrics-port", type=_port, help="serve Prometheus metrics on this port")
    run.add_argument("--max-batch-records", type=_positive, default=10_000,
                     help="records evaluated per batch at most (bounds the time between heartbeats)")
    run.add_argument("--session-timeout-ms", type=int, default=10_000)
    run.add_argument("--idle-trial-seconds", type=float, default=3600.0,
                     help="release a trial's state after this long without events (0: never)")
    run.add_argument("--ended-trial-grace-seconds", type=float, default=10.0,
                     help="after every worker of a trial sent its end marker, release its state "
                          "once it has had no events for this long")
    run.set_defaults(handler=cmd_run)

    tail = command("tail", help="print alerts as they arrive")
    kafka_options(tail)
    tail.add_argument("--trial", action="append", default=[], help="only this trial (repeatable)")
    tail.add_argument("--json", action="store_true", help="one JSON object per alert")
    tail.add_argument("--no-follow", action="store_true", help="print what is there, then exit")
    tail.add_argument("--max-alerts", type=_positive, help="exit after this many alerts")
    tail.set_defaults(handler=cmd_tail)

    replay = command("replay", help="run the rules over recorded events (postmortem)")
    replay.add_argument("--input", action="append", default=[], metavar="FILE", help="replay file (repeatable)")
    replay.add_argument("--config", required=True)
    replay.add_argument("--output", help="alerts as JSON lines ('-' for stdout)")
    replay.add_argument("--publish", metavar="TOPIC", help="publish the alerts to this topic instead")
    replay.add_argument("--trial", action="append", default=[], help="only this trial (repeatable)")
    replay.add_argument("--since", type=_time, help="only events with ts >= TIME (epoch seconds or ISO 8601)")
    replay.add_argument("--until", type=_time, help="only events with ts <= TIME")
    kafka_options(replay)
    replay.set_defaults(handler=cmd_replay)

    record = command("record", help="write the tensors and logs topics to a replay file")
    kafka_options(record)
    record.add_argument("--trial", action="append", default=[], help="only this trial (repeatable)")
    record.add_argument("--output", required=True, help="replay file to write ('-' for stdout)")
    record.set_defaults(handler=cmd_record)

    demo = command("demo", help="embedded broker + synthetic training + sidecar, live")
    demo.add_argument("--bootstrap-servers", metavar="HOST:PORT",
                      help=f"use this cluster instead of the embedded broker (or ${ENV_BOOTSTRAP})")
    demo.add_argument("--steps", type=int, default=300, help="training steps to simulate")
    demo.set_defaults(handler=cmd_demo)

    commands.add_parser("tap", help="run a command and publish its stdout/stderr lines: "
                                    "tap --trial ID -- COMMAND ...")
    return parser


if __name__ == "__main__":
    sys.exit(main())
