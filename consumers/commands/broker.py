"""``trainsentry broker``: the bundled Kafka-protocol broker (Tansu) on this machine, until Ctrl-C.

For trying trainsentry without Docker or a cluster: it listens on loopback only, keeps everything
in memory (gone when it stops), creates the topics, and prints the address and the ``export``
line that points the other commands and the training side at it. The default port is the one
every command tries when no cluster is named, so in another terminal they find it even without
the ``export``. A port already taken is one line and exit code 2; SIGINT (Ctrl-C) and SIGTERM stop
the broker and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from trainsentry.consumers.commands.errors import UsageError
from trainsentry.consumers.commands.options import port, positive
from trainsentry.consumers.commands.until_signal import run_until_signal
from trainsentry.protocol import Topics
from trainsentry.protocol.settings import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_TOPIC_PREFIX,
    ENV_BOOTSTRAP,
    ENV_TOPIC_PREFIX,
)

NAME = "broker"
HELP = "run the bundled Kafka-protocol broker on this machine, in memory, until Ctrl-C"
DEFAULT_PORT = int(DEFAULT_BOOTSTRAP.rpartition(":")[2])
DEFAULT_PARTITIONS = 4
WATCH_SECONDS = 0.5  # how often the broker process is checked while waiting for a signal


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=port, default=DEFAULT_PORT,
                        help="loopback port to listen on (default %(default)s)")
    parser.add_argument("--topic-prefix", help=(
        f"create the topics of this prefix (default: ${ENV_TOPIC_PREFIX}, else {DEFAULT_TOPIC_PREFIX})"))
    parser.add_argument("--partitions", type=positive, default=DEFAULT_PARTITIONS,
                        help="partitions of each topic created (default %(default)s)")


def execute(args: argparse.Namespace) -> int:
    from trainsentry.consumers.broker import port_taken

    topics = Topics.from_env(args.topic_prefix)
    taken = port_taken(args.port)
    if taken is not None:
        raise UsageError(f"--port: cannot listen on 127.0.0.1:{args.port} ({taken}): another broker "
                         f"may be running there; choose another port with --port")
    return run_until_signal(lambda stop: serve(args.port, topics, args.partitions, stop))


async def serve(port_number: int, topics: Topics, partitions: int, stop: asyncio.Event) -> None:
    """Start the broker, create ``topics``, say how to use it, and stop it once ``stop`` is set."""
    from trainsentry.consumers.broker import BrokerError, EmbeddedBroker, ensure_topics

    broker = await asyncio.to_thread(EmbeddedBroker(port=port_number).start)
    try:
        await ensure_topics(broker.bootstrap_servers, topics.all(), partitions=partitions)
        exports = [f"export {ENV_BOOTSTRAP}={broker.bootstrap_servers}"]
        if topics.prefix != DEFAULT_TOPIC_PREFIX:
            exports.append(f"export {ENV_TOPIC_PREFIX}={topics.prefix}")
        print(f"Kafka-protocol broker (Tansu, in memory) at {broker.bootstrap_servers}; topics "
              f"{', '.join(topics.all())} created with {partitions} partitions each.\n"
              f"In another terminal:\n\n    " + "\n    ".join(exports) + "\n\n"
              "Ctrl-C stops it (and everything it holds is gone).", flush=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), WATCH_SECONDS)
            if broker.process is None or broker.process.poll() is not None:
                code = None if broker.process is None else broker.process.returncode
                raise BrokerError(f"the broker at {broker.bootstrap_servers} exited (code {code})")
        print("stopping the broker", flush=True)
    finally:
        await asyncio.to_thread(broker.stop)
