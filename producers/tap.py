"""``trainsentry tap``: run a training command, pass its output through, publish every line.

::

    trainsentry tap --trial digits-1 -- python train.py --epochs 10

The command's stdout and stderr reach the terminal byte for byte as they are written; each line
(split as docs/rules.md, "Metric definitions", says: see :mod:`.lines`) also becomes a ``log``
event, so the sidecar's metric definitions can parse them. SIGINT and SIGTERM are passed on to
the command, and the tap exits with its exit code (128 + N when a signal N ended it). The command
also finds the trial, worker, bootstrap servers and topic prefix in its environment, so a
:class:`~.torch_hook.TrainsentryHook` inside it needs no arguments to publish under the same trial.

A secured cluster (TLS, SASL) is configured as everywhere else in trainsentry
(:mod:`trainsentry.protocol.kafka_properties`): ``--kafka-config FILE`` (else
``$TRAINSENTRY_KAFKA_CONFIG``), ``KAFKA_*`` environment variables, and ``-X key=value`` over both.
The command inherits them as ``$TRAINSENTRY_KAFKA_CONFIG`` and ``KAFKA_*`` variables, so a hook
inside it connects the same way. A property that cannot be used is one line naming it, exit code 2,
and the command is not started.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import BinaryIO

from trainsentry.protocol import MAX_TRIAL_CHARS, MAX_WORKER_CHARS
from trainsentry.protocol.kafka_properties import (
    ENV_KAFKA_CONFIG,
    ENV_PREFIX,
    KafkaConfigError,
    parse_assignment,
)
from trainsentry.protocol.settings import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_TOPIC_PREFIX,
    ENV_BOOTSTRAP,
    ENV_TOPIC_PREFIX,
    ENV_TRIAL,
    ENV_WORKER,
)

from .kafka_client_options import KafkaClientOptions
from .kafka_connection import CLIENT_ID
from .lines import LineSplitter
from .publisher import TensorPublisher
from .settings import SenderSettings

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
READ_SIZE = 64 * 1024
# After the command exits, how long to wait for output still in the pipes (a process it started
# in the background may keep them open for ever).
DRAIN_TIMEOUT_S = 5.0


def main(argv: list[str]) -> int:
    """Run ``trainsentry tap``; returns the command's exit code (2 for a usage error)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage
        return exc.code if isinstance(exc.code, int) else 2
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("trainsentry tap: no command given (usage: trainsentry tap --trial ID -- COMMAND ...)",
              file=sys.stderr)
        return 2
    # Checked before the command starts (the same bounds as TensorPublisher's, which is built only
    # once the command runs, so that a command that cannot start costs no Kafka connection): a bad
    # value must not leave the command running with nobody reading its output.
    problem = _bad_option(args)
    if problem:
        print(f"trainsentry tap: {problem}", file=sys.stderr)
        return 2
    try:
        settings = _sender_settings(args)
        KafkaClientOptions.resolve(settings, CLIENT_ID)  # certificates load, SASL is complete
    except KafkaConfigError as exc:
        print(f"trainsentry tap: {exc}", file=sys.stderr)
        return 2
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # anything printed before must come before the command's output
    try:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 env=_child_environment(args, settings), bufsize=0)
    except OSError as exc:
        print(f"trainsentry tap: cannot run {command[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        return 127 if isinstance(exc, FileNotFoundError) else 126
    publisher = TensorPublisher(args.trial, worker=args.worker, settings=settings)
    restore = _forward_signals(child)
    try:
        readers = [
            threading.Thread(target=_relay, args=(child.stdout, 1, "stdout", publisher),
                             name="trainsentry-tap-stdout", daemon=True),
            threading.Thread(target=_relay, args=(child.stderr, 2, "stderr", publisher),
                             name="trainsentry-tap-stderr", daemon=True),
        ]
        for reader in readers:
            reader.start()
        returncode = child.wait()
        for reader in readers:
            reader.join(DRAIN_TIMEOUT_S)
        publisher.end_of_worker(f"command exited with code {returncode}")
    finally:
        restore()
        publisher.close()
    return 128 - returncode if returncode < 0 else returncode


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trainsentry tap",
        description="Run COMMAND, pass its output through, and publish each line as a log event.")
    parser.add_argument("--trial", required=True, help="the training run's id")
    parser.add_argument("--worker", help="this process's id in a distributed run (default: $RANK or 0)")
    parser.add_argument("--bootstrap-servers",
                        help=f"Kafka host:port[,...] (default: ${ENV_BOOTSTRAP}, else {DEFAULT_BOOTSTRAP})")
    parser.add_argument("--topic-prefix",
                        help=f"topic name prefix (default: ${ENV_TOPIC_PREFIX}, else {DEFAULT_TOPIC_PREFIX})")
    parser.add_argument("--kafka-config", metavar="FILE",
                        help=f"Kafka client properties (TLS, SASL), librdkafka style "
                             f"(default: ${ENV_KAFKA_CONFIG}); KAFKA_* variables override it")
    parser.add_argument("-X", dest="kafka_properties", metavar="KEY=VALUE", action="append",
                        default=[], help="a Kafka client property over the file and the environment "
                                         "(repeatable), e.g. -X security.protocol=SSL")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARG ...]")
    return parser


def _sender_settings(args: argparse.Namespace) -> SenderSettings:
    """The publisher's settings; :class:`KafkaConfigError` for a ``-X`` that is not ``KEY=VALUE``
    of a known property."""
    overrides = dict(parse_assignment(text) for text in args.kafka_properties)
    return SenderSettings(bootstrap_servers=args.bootstrap_servers, topic_prefix=args.topic_prefix,
                          kafka_config=args.kafka_config, kafka_properties=overrides or None)


def _bad_option(args: argparse.Namespace) -> str | None:
    """What is wrong with ``--trial`` or ``--worker``, or ``None``: the protocol's bounds, which
    TensorPublisher enforces for the trial (and a worker beyond them the sidecar would reject)."""
    for option, value, limit in (("--trial", args.trial, MAX_TRIAL_CHARS),
                                 ("--worker", args.worker, MAX_WORKER_CHARS)):
        if value is None:  # --worker left out: the default applies
            continue
        if not 0 < len(value) <= limit:
            return f"{option} must be 1..{limit} characters, got {len(value)}: {value!r}"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # bytes that are not UTF-8 in argv come as lone surrogates
            return f"{option} must be valid UTF-8, got {value!r}"
    return None


def _child_environment(args: argparse.Namespace, settings: SenderSettings) -> dict[str, str]:
    env = dict(os.environ)
    env[ENV_TRIAL] = args.trial
    for name, value in ((ENV_WORKER, args.worker), (ENV_BOOTSTRAP, args.bootstrap_servers),
                        (ENV_TOPIC_PREFIX, args.topic_prefix)):
        if value:
            env[name] = value
    if settings.kafka_config:  # absolute: the command may change its directory
        env[ENV_KAFKA_CONFIG] = os.path.abspath(settings.kafka_config)
    for key, value in (settings.kafka_properties or {}).items():
        env[ENV_PREFIX + key.upper().replace(".", "_")] = value  # as KafkaProperties reads them
    env.setdefault("PYTHONUNBUFFERED", "1")  # a Python child would block-buffer into a pipe
    return env


def _relay(pipe: BinaryIO, out_fd: int, stream: str, publisher: TensorPublisher) -> None:
    """Copy one of the child's pipes to our own descriptor and publish its lines."""
    splitter = LineSplitter()
    fd = pipe.fileno()
    writable = True
    try:
        while True:
            data = os.read(fd, READ_SIZE)
            if not data:
                break
            if writable:
                writable = _write_all(out_fd, data)
            for line in splitter.feed(data):
                publisher.log_line(line, stream=stream)
        for line in splitter.finish():
            publisher.log_line(line, stream=stream)
    finally:
        pipe.close()


def _write_all(fd: int, data: bytes) -> bool:
    """Write everything; ``False`` once our own output is gone (e.g. ``| head``): keep publishing."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        return False
    return True


def _forward_signals(child: subprocess.Popen) -> Callable[[], None]:
    """Pass SIGINT and SIGTERM on to ``child``; returns what puts the previous handlers back."""

    def forward(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and _terminal_signals_our_group():
            return  # Ctrl-C at a terminal reaches the whole foreground group: the child has it
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    try:
        previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    except ValueError:  # not the main thread: signals cannot be handled here
        return lambda: None

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def _terminal_signals_our_group() -> bool:
    try:
        return os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp()
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
