"""Shared fixtures: a real Kafka-protocol broker for integration tests.

By default the embedded Tansu broker is started once per test session. ``KAFKA_BOOTSTRAP_SERVERS``
points the suite at an existing cluster instead; ``--kafka=testcontainers`` starts Apache Kafka in
a container where a Docker engine answers.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Iterator

import pytest

from trainsentry.consumers.broker import EmbeddedBroker, bootstrap_from_env, delete_topics, ensure_topics
from trainsentry.protocol import Topics


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--kafka", choices=("embedded", "testcontainers"), default="embedded",
        help="broker for integration tests when KAFKA_BOOTSTRAP_SERVERS is unset")


@pytest.fixture(scope="session")
def bootstrap_servers(request: pytest.FixtureRequest) -> Iterator[str]:
    """host:port of the broker the integration tests talk to."""
    existing = bootstrap_from_env()
    if existing:
        yield existing
        return
    if request.config.getoption("--kafka") == "testcontainers":
        try:
            from testcontainers.community.kafka import KafkaContainer
        except ImportError:  # testcontainers before 4.13
            from testcontainers.kafka import KafkaContainer
        try:
            container = KafkaContainer().with_kraft()
            container.start()
        except Exception as exc:
            pytest.skip(f"no Docker engine for testcontainers: {exc}")
        try:
            yield container.get_bootstrap_server()
        finally:
            container.stop()
        return
    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def topics(bootstrap_servers: str) -> Iterator[Topics]:
    """Fresh topic names for one test (created up front, deleted afterwards)."""
    names = Topics(prefix=f"t{uuid.uuid4().hex[:10]}")
    asyncio.run(ensure_topics(bootstrap_servers, names.all()))
    yield names
    try:
        asyncio.run(delete_topics(bootstrap_servers, names.all()))
    except Exception:
        pass  # best effort: the broker may already be gone
