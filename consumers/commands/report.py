"""``trainsentry report``: a postmortem in one self-contained HTML file.

The events of replay files (or of the topics, from their beginning) go through the same driver and
engine as every replay; the file holds the curves with the alerts on them, the alert timeline, the
objective ranking, the weight and gradient statistics, the configuration and what was skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from trainsentry.consumers.commands.errors import EXIT_OK, UsageError, report
from trainsentry.consumers.commands.options import add_kafka_options, bootstrap_given, kafka_settings
from trainsentry.protocol.settings import ENV_BOOTSTRAP

NAME = "report"
HELP = "write a postmortem report (one HTML file) of recorded events or of the topics"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", action="append", default=[], metavar="FILE", help="replay file (repeatable)")
    parser.add_argument("--config", required=True, help="rules configuration (.toml or SageMaker .json)")
    parser.add_argument("--output", required=True, metavar="FILE", help="the HTML file to write")
    parser.add_argument("--trial", action="append", default=[], help="only this trial (repeatable)")
    add_kafka_options(parser)


def execute(args: argparse.Namespace) -> int:
    from trainsentry.rules.config import load_config

    if args.input and args.bootstrap_servers:
        raise UsageError("report reads --input FILE ... or the topics at --bootstrap-servers, not both")
    if not args.input and not bootstrap_given(args):
        raise UsageError(f"report needs --input FILE ... or --bootstrap-servers HOST:PORT (or ${ENV_BOOTSTRAP})")
    for path in args.input:
        if not Path(path).is_file():
            raise UsageError(f"--input: no such file: {path}")
    output = Path(args.output)
    if output.is_dir() or not output.parent.is_dir():
        raise UsageError(f"--output: cannot write {args.output}: not a file in an existing folder")
    config = load_config(args.config)
    config_text = Path(args.config).read_text(encoding="utf-8")
    trials = frozenset(args.trial) if args.trial else None
    if args.input:
        from trainsentry.consumers.sources.replay_file import ReplayFileSource
        source, sources = ReplayFileSource(args.input), list(args.input)
    else:
        from trainsentry.consumers.sources.topic_reader import TopicSource
        settings = kafka_settings(args)
        topics = settings.topics
        keys = None if trials is None else {t.encode() for t in trials}
        source = TopicSource(settings, [topics.tensors, topics.logs], keys=keys)
        sources = [f"topics {topics.tensors}, {topics.logs} at {settings.bootstrap_servers}"]

    try:
        from trainsentry.consumers.report import build_report
    except ImportError as exc:  # matplotlib is an extra
        raise UsageError(f"report needs {exc.name or 'matplotlib'}: pip install 'trainsentry[report]'") from None
    html, account = asyncio.run(build_report(config, source, trials, sources=sources,
                                             config_path=args.config, config_text=config_text))
    # Written beside the target and renamed: a failed run leaves the previous report in place.
    partial = output.with_name(output.name + ".partial")
    try:
        partial.write_text(html, encoding="utf-8")
        os.replace(partial, output)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UsageError(f"--output: cannot write {args.output}: {exc.strerror or exc}") from None
    report(f"report of {account.events} events ({account.alerts} alerts, {account.filtered_out} of other "
           f"trials, {account.recomputed_skipped} metric/alert events skipped, {account.invalid} invalid) "
           f"written to {args.output}")
    return EXIT_OK
