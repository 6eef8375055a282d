"""``trainsentry tail``: print alerts as they arrive, one readable line (or JSON object) each."""

from __future__ import annotations

import argparse
import asyncio

from trainsentry.consumers.commands.options import add_kafka_options, kafka_settings, positive, time_value
from trainsentry.consumers.commands.until_signal import run_until_signal

NAME = "tail"
HELP = "print alerts as they arrive"


def configure(parser: argparse.ArgumentParser) -> None:
    add_kafka_options(parser)
    parser.add_argument("--from", dest="start", type=_start, default="now", metavar="beginning|now|TIME",
                        help="where to start: the topic's beginning, now (the default), or the alerts "
                             "whose triggering event was written at or after TIME (epoch seconds or "
                             "ISO 8601, UTC unless it says otherwise)")
    parser.add_argument("--topic", help="the alerts topic (default: PREFIX.alerts), e.g. one that "
                                        "`replay --publish` wrote")
    parser.add_argument("--trial", action="append", default=[], help="only this trial (repeatable)")
    parser.add_argument("--rule", action="append", default=[],
                        help="only this rule, by name or built-in type (repeatable)")
    parser.add_argument("--min-severity", type=_severity, metavar="{info,warning,error}",
                        help="only alerts this severe or more (an alert without one is a warning)")
    parser.add_argument("--json", action="store_true", help="one JSON object per alert")
    parser.add_argument("--no-follow", action="store_true", help="print what is there, then exit")
    parser.add_argument("--max-alerts", type=positive, help="exit after this many alerts")


def execute(args: argparse.Namespace) -> int:
    from trainsentry.consumers.notify.filters import AlertFilter
    from trainsentry.consumers.notify.severity import Severity
    from trainsentry.consumers.tail import TailPrinter, follow_alerts

    settings = kafka_settings(args)
    keep = AlertFilter.of(rules=args.rule, min_severity=args.min_severity or Severity.INFO)
    printer = TailPrinter(as_json=args.json)

    async def tail(stop: asyncio.Event) -> None:
        await follow_alerts(settings, printer, trials=set(args.trial) or None, follow=not args.no_follow,
                            limit=args.max_alerts, stop=stop, topic=args.topic, start=args.start,
                            alert_filter=keep)
    return run_until_signal(tail)


def _start(text: str):
    if text in ("beginning", "now"):
        return text
    try:
        return time_value(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected beginning, now, or a time (epoch seconds or ISO 8601), got {text!r}") from None


def _severity(text: str):
    from trainsentry.consumers.notify.severity import Severity

    try:
        return Severity.option(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
