"""``trainsentry notify``: send alerts to chat, email and webhooks (apprise URLs), throttled.

Settings come from the ``[notify]`` table of ``--config`` (see
:mod:`trainsentry.consumers.notify.settings`); an option given here replaces the table's key.
"""

from __future__ import annotations

import argparse

from trainsentry.consumers.commands.errors import UsageError
from trainsentry.consumers.commands.options import (
    add_kafka_options,
    default_of,
    kafka_settings,
    positive,
)
from trainsentry.consumers.commands.until_signal import run_until_signal

NAME = "notify"
HELP = "send alerts to Slack, Teams, Discord, email, webhooks... (apprise URLs), throttled"


def configure(parser: argparse.ArgumentParser) -> None:
    from trainsentry.consumers.notify.settings import DEFAULT_NOTIFY_GROUP, DEFAULT_START, NotifySettings

    parser.add_argument("--to", action="append", default=[], metavar="URL", help=(
        "a destination as an apprise URL, e.g. slack://..., msteams://..., discord://..., "
        "mailto://..., json://HOST:PORT/PATH (repeatable; replaces the [notify] table's `to`)"))
    parser.add_argument("--config", metavar="FILE", help="read the [notify] table of this configuration")
    parser.add_argument("--wait", type=_seconds, metavar="SECONDS", help=(
        "at most one message per (trial, rule) per this many seconds; the alerts held back are "
        f"counted into the next message (default {default_of(NotifySettings, 'wait_seconds'):g})"))
    parser.add_argument("--trial", action="append", default=[], help="only this trial (repeatable)")
    parser.add_argument("--rule", action="append", default=[],
                        help="only this rule, by name or built-in type (repeatable)")
    parser.add_argument("--min-severity", type=_severity, metavar="{info,warning,error}",
                        help="only alerts this severe or more (an alert without one is a warning)")
    parser.add_argument("--give-up-after", type=_seconds, metavar="SECONDS", help=(
        "give a message up when a destination still refuses it this long after it was queued "
        f"(default {default_of(NotifySettings, 'give_up_after_seconds'):g})"))
    add_kafka_options(parser)
    parser.add_argument("--topic", help="the alerts topic to read (default: PREFIX.alerts), e.g. one "
                                        "that `replay --publish` wrote")
    parser.add_argument("--group-id", default=DEFAULT_NOTIFY_GROUP,
                        help="this notifier's consumer group (default %(default)s)")
    parser.add_argument("--from", dest="start", choices=("now", "beginning"),
                        default=DEFAULT_START,
                        help="where a group that never ran starts (default %(default)s; a group "
                             "that ran resumes where it stopped)")
    parser.add_argument("--max-batch-records", type=positive, default=500,
                        help="alerts read per batch at most (default %(default)s)")


def execute(args: argparse.Namespace) -> int:
    try:
        import apprise  # noqa: F401 - an extra: say how to get it rather than fail on import
    except ImportError:
        raise UsageError("notify needs the apprise package: pip install 'trainsentry[notify]'") from None
    from trainsentry.consumers.notify.destinations import DestinationError, parse_destinations
    from trainsentry.consumers.notify.notifier import Notifier, NotifyOptions
    from trainsentry.consumers.notify.settings import NotifySettings, load_notify_settings

    settings = load_notify_settings(args.config) if args.config else NotifySettings()
    settings = settings.overridden(to=tuple(args.to), wait_seconds=args.wait, trials=tuple(args.trial),
                                   rules=tuple(args.rule), min_severity=args.min_severity,
                                   give_up_after_seconds=args.give_up_after)
    try:
        destinations = parse_destinations(settings.to)
    except DestinationError as exc:
        raise UsageError(f"--to: {exc}") from None
    kafka = kafka_settings(args, group_id=args.group_id, max_batch_records=args.max_batch_records)
    options = NotifyOptions(alerts_topic=args.topic or kafka.topics.alerts, group_id=args.group_id,
                            start=args.start)
    return run_until_signal(lambda stop: Notifier(kafka, settings, options, destinations).run(stop))


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _severity(text: str):
    from trainsentry.consumers.notify.severity import Severity

    try:
        return Severity.option(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
