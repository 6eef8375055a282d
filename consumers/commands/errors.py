"""How a command ends: exit codes, and the one line a user reads when something is wrong.

Every user error (missing file, bad configuration, unreachable cluster) is one line on stderr and
a non-zero exit code, never a traceback: 2 for bad input or configuration, 1 for a broker problem,
130 when interrupted.
"""

from __future__ import annotations

import sys

from trainsentry.protocol.kafka_properties import KafkaConfigError
from trainsentry.rules.base import ConfigError

PROG = "trainsentry"
EXIT_OK = 0
EXIT_BROKER = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad input from the user (exit code 2); the message names the option and the value."""


def explain(error: BaseException) -> tuple[int, str] | None:
    """The exit code and message for an error a user can act on; ``None`` for a bug.

    The Kafka client's and the broker module's errors are recognised without importing them: an
    error of a module that was never imported cannot have been raised (``replay`` of files runs
    without aiokafka).
    """
    if isinstance(error, (ConfigError, UsageError, KafkaConfigError)):
        return EXIT_USAGE, str(error)
    broker = sys.modules.get("trainsentry.consumers.broker")
    if broker is not None and isinstance(error, broker.BrokerError):
        return EXIT_BROKER, str(error)
    kafka_errors = sys.modules.get("aiokafka.errors")
    if kafka_errors is not None and isinstance(error, kafka_errors.KafkaError):
        # The cluster went away or refused us after the first contact.
        return EXIT_BROKER, f"Kafka: {type(error).__name__}: {error}"
    return None


def report(message: str) -> None:
    """One line on stderr, prefixed with the program's name."""
    print(f"{PROG}: {message}", file=sys.stderr)
