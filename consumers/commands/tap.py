"""``trainsentry tap --trial ID -- COMMAND ...``: handed to the log tap before any parsing here.

Everything after ``tap`` belongs to the tap's own parser (:mod:`trainsentry.producers.tap`), and
everything after ``--`` to the command being tapped; the main parser lists ``tap`` only for help.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

NAME = "tap"
HELP = "run a command and publish its stdout/stderr lines: tap --trial ID -- COMMAND ..."


def add_to(commands: argparse._SubParsersAction) -> None:
    """List ``tap`` among the commands (its options are the tap's own)."""
    commands.add_parser(NAME, help=HELP)


def dispatch(argv: Sequence[str]) -> int:
    """Run the tap with the arguments after ``tap``; its exit code."""
    from trainsentry.producers.tap import main

    return main(list(argv))
