"""``trainsentry record``: write the tensors and logs topics to a replay file."""

from __future__ import annotations

import argparse
import asyncio

from trainsentry.consumers.commands.errors import EXIT_OK, UsageError, report
from trainsentry.consumers.commands.options import add_kafka_options, kafka_settings

NAME = "record"
HELP = "write the tensors and logs topics to a replay file"


def configure(parser: argparse.ArgumentParser) -> None:
    add_kafka_options(parser)
    parser.add_argument("--trial", action="append", default=[], help="only this trial (repeatable)")
    parser.add_argument("--output", required=True, help="replay file to write ('-' for stdout)")


def execute(args: argparse.Namespace) -> int:
    from trainsentry.consumers.output_file import OutputFileError, atomic_output
    from trainsentry.consumers.progress import CommandProgress
    from trainsentry.consumers.record import record_topics

    settings = kafka_settings(args)
    trials = set(args.trial) or None
    # Written beside the target and renamed at the end: a failed recording leaves the old file.
    try:
        with atomic_output(args.output, binary=True) as stream, \
                CommandProgress("record", unit="offsets") as progress:
            written = asyncio.run(record_topics(settings, stream, trials, progress))
    except OutputFileError as exc:
        raise UsageError(f"--output: {exc}") from None
    report(f"recorded {written} events to {args.output}")
    return EXIT_OK

