"""Shared fixtures: a real Kafka-protocol broker for integration tests, and where they are marked.

By default the embedded Tansu broker is started once per test session. ``KAFKA_BOOTSTRAP_SERVERS``
points the suite at an existing cluster instead; ``--kafka=testcontainers`` starts Apache Kafka in
a container where a Docker engine answers.

A test is an integration test, marked ``integration`` here and nowhere else, when it uses one of
:data:`BROKER_FIXTURES` (directly or through another fixture): the shared broker, or the broker
binary for a test that starts brokers of its own. ``make test-unit`` deselects them.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterator

import pytest

from trainsentry.consumers import broker
from trainsentry.consumers.broker import EmbeddedBroker, bootstrap_from_env, delete_topics, ensure_topics
from trainsentry.protocol import Topics

BROKER_FIXTURES = frozenset({"bootstrap_servers", "broker_binary"})


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if BROKER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _aiokafka_log_level_restored() -> Iterator[None]:
    """A command run in-process sets aiokafka's log level for its process; the next test gets it back."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.fixture(scope="session")
def broker_binary() -> str:
    """The embedded broker's binary, for tests that start (and stop, or kill) brokers themselves."""
    try:
        return broker.broker_binary()
    except broker.BrokerError as exc:
        pytest.skip(str(exc))


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
