"""Sinks by name: ``--sink NAME[:TARGET]`` and the one line that registers a sink."""

from __future__ import annotations

import pytest

from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sinks import SINKS, SinkTargetError, make_sink
from trainsentry.consumers.sinks.base import Sink
from trainsentry.protocol import AlertEvent, Topics


def test_every_registered_sink_is_made_from_its_name(tmp_path) -> None:
    settings = KafkaSettings("127.0.0.1:9092", topics=Topics("reg"))
    targets = {"kafka": "", "jsonl": str(tmp_path / "tee.jsonl"), "console": "json"}
    assert set(targets) == set(SINKS)
    for name, target in targets.items():
        sink = make_sink(f"{name}:{target}" if target else name, settings)
        assert isinstance(sink, Sink), name


def test_kafka_targets() -> None:
    settings = KafkaSettings("127.0.0.1:9092", topics=Topics("reg"))
    default = make_sink("kafka", settings)
    assert (default.routes[AlertEvent], default.dead_letter_topic) == ("reg.alerts", "reg.deadletter")
    what_if = make_sink("kafka:what-if.alerts", settings)
    assert (what_if.routes, what_if.dead_letter_topic) == ({AlertEvent: "what-if.alerts"}, None)


@pytest.mark.parametrize("spec, message", [
    ("pigeon", "unknown sink 'pigeon'"),
    ("console:yaml", "console:yaml: console prints text or json"),
    ("jsonl", "jsonl: jsonl needs a file"),
])
def test_a_sink_that_cannot_be_made_is_one_clear_error(spec: str, message: str) -> None:
    with pytest.raises(SinkTargetError, match=message):
        make_sink(spec, None)


def test_an_unwritable_file_names_the_path(tmp_path) -> None:
    with pytest.raises(SinkTargetError, match="cannot write"):
        make_sink(f"jsonl:{tmp_path}/missing/dir/x.jsonl", None)
