"""The shared options: defaults from the settings dataclasses, the environment's prefix and cluster."""

from __future__ import annotations

import argparse

import pytest

from trainsentry.consumers.cli import build_parser
from trainsentry.consumers.commands.errors import UsageError
from trainsentry.consumers.commands.options import kafka_settings
from trainsentry.consumers.settings import KafkaSettings, SidecarOptions
from trainsentry.protocol.settings import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_TOPIC_PREFIX,
    ENV_BOOTSTRAP,
    ENV_TOPIC_PREFIX,
)

KAFKA_COMMANDS = {"run": ["--config", "rules.toml"], "tail": [], "record": ["--output", "x"],
                  "replay": ["--config", "rules.toml", "--output", "-"]}


def parse(command: str, *extra: str) -> argparse.Namespace:
    return build_parser().parse_args([command, *KAFKA_COMMANDS[command], *extra])


def test_run_defaults_are_the_settings_defaults() -> None:
    args = parse("run")
    kafka, options = KafkaSettings(DEFAULT_BOOTSTRAP), SidecarOptions()
    assert (args.group_id, args.fetch_max_wait_ms, args.max_batch_records, args.session_timeout_ms) == (
        kafka.group_id, kafka.fetch_max_wait_ms, kafka.max_batch_records, kafka.session_timeout_ms)
    assert (args.idle_trial_seconds, args.ended_trial_grace_seconds) == (
        options.idle_trial_seconds, options.ended_trial_grace_seconds)


@pytest.mark.parametrize("command", sorted(KAFKA_COMMANDS))
def test_prefix_and_cluster_from_the_environment_then_the_defaults(command, monkeypatch) -> None:
    monkeypatch.delenv(ENV_TOPIC_PREFIX, raising=False)
    monkeypatch.delenv(ENV_BOOTSTRAP, raising=False)
    settings = kafka_settings(parse(command))
    assert (settings.topics.prefix, settings.bootstrap_servers) == (DEFAULT_TOPIC_PREFIX, DEFAULT_BOOTSTRAP)
    monkeypatch.setenv(ENV_TOPIC_PREFIX, "team")
    monkeypatch.setenv(ENV_BOOTSTRAP, "kafka:9093")
    settings = kafka_settings(parse(command))
    assert (settings.topics.alerts, settings.bootstrap_servers) == ("team.alerts", "kafka:9093")
    settings = kafka_settings(parse(command, "--topic-prefix", "mine", "--bootstrap-servers", "k:1"))
    assert (settings.topics.tensors, settings.bootstrap_servers) == ("mine.tensors", "k:1")


def test_a_malformed_cluster_address_names_the_option() -> None:
    with pytest.raises(UsageError, match="--bootstrap-servers: expected HOST:PORT"):
        kafka_settings(parse("tail", "--bootstrap-servers", "no-port"))
