"""Options several commands share: logging, where the Kafka cluster is and how to authenticate to
it, the topic prefix, and the value types of the command line.

Defaults are the settings dataclasses' own (:func:`default_of`), and the environment's names and
defaults those of :mod:`trainsentry.protocol.settings`: nothing here re-declares them.

>>> default_of(KafkaSettings, "fetch_max_wait_ms") == KafkaSettings("x").fetch_max_wait_ms
True
>>> positive("3"), port("9464")
(3, 9464)
>>> time_value("2024-01-01T00:00:00")
1704067200.0
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from trainsentry.consumers.commands.errors import UsageError
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.protocol import Topics
from trainsentry.protocol.kafka_properties import (
    ENV_KAFKA_CONFIG,
    PROPERTIES,
    KafkaProperties,
    parse_assignment,
)
from trainsentry.protocol.settings import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_TOPIC_PREFIX,
    ENV_BOOTSTRAP,
    ENV_TOPIC_PREFIX,
    resolve_bootstrap_servers,
)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def default_of(settings_class: type, name: str) -> Any:
    """The default of field ``name`` of a settings dataclass."""
    for item in dataclasses.fields(settings_class):
        if item.name == name:
            if item.default is not dataclasses.MISSING:
                return item.default
            if item.default_factory is not dataclasses.MISSING:
                return item.default_factory()
    raise KeyError(f"{settings_class.__name__} has no field {name!r} with a default")


def common_options() -> argparse.ArgumentParser:
    """The options of every command (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default="INFO", choices=LOG_LEVELS)
    return common


def configure_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # aiokafka logs every failed connection attempt; our own lines say what it means for the user.
    logging.getLogger("aiokafka").setLevel(logging.DEBUG if level == "DEBUG" else logging.CRITICAL)


def add_bootstrap_option(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--bootstrap-servers`` and the Kafka client properties (``--kafka-config``, ``-X``)."""
    parser.add_argument("--bootstrap-servers", metavar="HOST:PORT", help=help or (
        f"Kafka cluster (default: bootstrap.servers of the Kafka properties below, which "
        f"${ENV_BOOTSTRAP} sets too; else {DEFAULT_BOOTSTRAP})"))
    security = parser.add_argument_group("Kafka client properties", (
        f"librdkafka-style properties ({', '.join(PROPERTIES)}), read from the file, then from "
        "KAFKA_* variables (KAFKA_SASL_PASSWORD is sasl.password), then from -X, each overriding "
        "the one before"))
    security.add_argument("--kafka-config", metavar="FILE",
                          help=f"Kafka client properties file (default: ${ENV_KAFKA_CONFIG})")
    security.add_argument("-X", dest="kafka_property", action="append", default=[], metavar="KEY=VALUE",
                          help="one Kafka client property (repeatable); keep passwords in the file or "
                               "the environment: other users of the machine can read a command line")


def add_kafka_options(parser: argparse.ArgumentParser) -> None:
    """Where the cluster is and how to reach it, the topics' prefix, and how long one fetch waits."""
    add_bootstrap_option(parser)
    parser.add_argument("--topic-prefix", help=(
        f"topic name prefix (default: ${ENV_TOPIC_PREFIX}, else {DEFAULT_TOPIC_PREFIX})"))
    parser.add_argument("--fetch-max-wait-ms", type=int, default=default_of(KafkaSettings, "fetch_max_wait_ms"),
                        help="longest wait of one fetch (the delivery latency on Tansu; default %(default)s)")


def kafka_properties(args: argparse.Namespace) -> KafkaProperties:
    """The Kafka client properties: ``--kafka-config`` (else ``$TRAINSENTRY_KAFKA_CONFIG``), then
    ``KAFKA_*`` variables, then ``-X``; a property that cannot be used is a
    :class:`~trainsentry.protocol.kafka_properties.KafkaConfigError` naming it (exit code 2)."""
    overrides = dict(parse_assignment(text) for text in getattr(args, "kafka_property", None) or ())
    return KafkaProperties.load(getattr(args, "kafka_config", None), overrides, os.environ)


def bootstrap_given(args: argparse.Namespace) -> str | None:
    """``--bootstrap-servers``, else ``bootstrap.servers`` of the Kafka properties (where
    ``$KAFKA_BOOTSTRAP_SERVERS`` overrides the file), else ``None`` (none chosen)."""
    return getattr(args, "bootstrap_servers", None) or kafka_properties(args).get("bootstrap.servers") or None


def kafka_settings(args: argparse.Namespace, **overrides: Any) -> KafkaSettings:
    """The Kafka settings the options describe (with the environment's and the defaults).

    The Kafka properties are read and checked here, once (files exist, certificates load, a SASL
    mechanism has its username): every client of the command is made from the result.
    """
    properties = kafka_properties(args)
    connection = properties.client_kwargs()
    servers = resolve_bootstrap_servers(getattr(args, "bootstrap_servers", None)
                                        or properties.get("bootstrap.servers"))
    if any(not part.rpartition(":")[2].isdigit() for part in servers.split(",")):
        raise UsageError(f"--bootstrap-servers: expected HOST:PORT[,HOST:PORT...], got {servers!r}")
    return KafkaSettings(bootstrap_servers=servers, topics=Topics.from_env(args.topic_prefix),
                         fetch_max_wait_ms=args.fetch_max_wait_ms, connection=connection, **overrides)


def positive(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def port(text: str) -> int:
    """A TCP port, 1..65535."""
    value = positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 1..65535, got {text!r}")
    return value


def time_value(text: str) -> float:
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
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def add_sink_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--sink NAME[:TARGET]`` (repeatable): more destinations of the outputs."""
    from trainsentry.consumers.sinks import SINKS  # light: the registry only names the modules

    parser.add_argument("--sink", action="append", default=[], metavar="NAME[:TARGET]", help=(
        f"also deliver {what} to this sink (repeatable; one of {', '.join(sorted(SINKS))}: "
        "console[:json], jsonl:FILE appends to FILE, kafka:TOPIC publishes the alerts to TOPIC)"))


def extra_sinks(args: argparse.Namespace, settings: KafkaSettings | None) -> list:
    """The sinks of ``--sink``; a name or target that cannot be used is one line naming it."""
    from trainsentry.consumers.sinks import SinkTargetError, make_sink

    try:
        return [make_sink(spec, settings) for spec in args.sink]
    except SinkTargetError as exc:
        raise UsageError(f"--sink: {exc}") from None
