"""The ``trainsentry`` command: builds the parser from the command modules and dispatches.

Each command is a module of :mod:`trainsentry.consumers.commands`; what a failure means for the
user (one line, an exit code) is :mod:`trainsentry.consumers.commands.errors`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from trainsentry.consumers.commands import broker, demo, notify, record, replay, run, tail, tap, ui
from trainsentry.consumers.commands import report as report_command
from trainsentry.consumers.commands.errors import EXIT_INTERRUPTED, PROG, explain, report
from trainsentry.consumers.commands.options import common_options, configure_logging

COMMANDS = (run, tail, notify, replay, record, demo, ui, report_command, broker)  # in the order `--help` lists them, then `tap`


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=(
        "A Kafka-native debugger for neural-network training. "
        "`trainsentry tap --trial ID -- COMMAND ...` runs a command and publishes its output."))
    common = common_options()
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(command.NAME, help=command.HELP, parents=[common])
        command.configure(sub)
        sub.set_defaults(execute=command.execute)
    tap.add_to(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == tap.NAME:  # everything after `--` belongs to the command being tapped
        return tap.dispatch(argv[1:])
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        return args.execute(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        known = explain(exc)
        if known is None:
            raise
        code, message = known
        report(f"error: {message}")
        return code


if __name__ == "__main__":
    sys.exit(main())
