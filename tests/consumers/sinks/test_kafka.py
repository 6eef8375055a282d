"""The Kafka sink on a real broker: each output on its type's topic, acknowledged on return."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError, RecordTooLargeError

from tests.consumers.sinks.outputs import alert, metric
from tests.sidecar_harness import read_alert_records, read_dead_letters, read_metrics
from trainsentry.consumers.records import DeadLetter
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sinks.kafka import KafkaSink
from trainsentry.protocol import AlertEvent

pytestmark = pytest.mark.usefixtures("broker_binary")  # brokers of its own, or none reachable


def deliver(sink: KafkaSink, outputs, dead) -> None:
    async def run() -> None:
        await sink.start()
        try:
            await sink.write_batch(outputs, dead)
        finally:
            await sink.stop(True)
    asyncio.run(run())


def test_outputs_go_to_the_topic_of_their_type(bootstrap_servers, topics) -> None:
    letter = DeadLetter(topics.tensors, 1, 7, b"j", b"\xc1", "field 'value': not a msgpack record", 0)
    deliver(KafkaSink(KafkaSettings(bootstrap_servers, topics=topics)), [alert(1), metric(), alert(2)],
            [letter])
    # Read at once: write_batch returned only after the broker acknowledged every record.
    assert [a.id for a in read_alert_records(bootstrap_servers, topics, timeout=5)] == ["id-1", "id-2"]
    assert [m.name for m in read_metrics(bootstrap_servers, topics, timeout=5)] == ["val"]
    dead = read_dead_letters(bootstrap_servers, topics, timeout=5)
    assert [(d["partition"], d["offset"], d["value"]) for d in dead] == [(1, 7, b"\xc1")]


def test_alerts_alone_to_a_chosen_topic(bootstrap_servers, topics) -> None:
    settings = KafkaSettings(bootstrap_servers, topics=topics)
    deliver(KafkaSink(settings, {AlertEvent: topics.alerts}), [metric(), alert(3)],
            [DeadLetter(topics.tensors, 0, 1, None, b"x", "bad", 0)])
    assert [a.id for a in read_alert_records(bootstrap_servers, topics, timeout=5)] == ["id-3"]
    assert read_metrics(bootstrap_servers, topics, timeout=2) == []
    assert read_dead_letters(bootstrap_servers, topics, timeout=2) == []


def test_which_failures_are_worth_retrying() -> None:
    sink = KafkaSink(KafkaSettings("127.0.0.1:1"))
    assert sink.retriable(KafkaConnectionError("broker away"))
    assert not sink.retriable(RecordTooLargeError("too large"))
    assert not sink.retriable(ValueError("a bug"))
