"""The training side on a cluster that only speaks TLS: publisher, follower, log handler, hook, tap.

The cluster is the embedded broker behind a real TLS endpoint (:mod:`tests.secure_cluster`); the
broker advertises the endpoint, so nothing reaches it in plaintext. Every refusal is checked on
both ends: the endpoint counts the failed handshake, and nothing arrives on the topic.
"""

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.producers.kafka_records import read_records
from tests.producers.test_alert_follower_faults import wait_until
from tests.producers.test_alerts import alert
from tests.secure_cluster import SecureCluster, secure_cluster
from trainsentry.producers import (
    AlertFollower,
    SaveConfig,
    SenderSettings,
    TensorPublisher,
    TrainsentryLogHandler,
)
from trainsentry.protocol import LogEvent, ScalarEvent, encode

pytestmark = pytest.mark.usefixtures("broker_binary")  # brokers of its own, or none reachable

STEPS = 20
SECRET = "hunter2-never-shown"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    with secure_cluster(tmp_path_factory.mktemp("tls")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    with secure_cluster(tmp_path_factory.mktemp("mtls"), mutual_tls=True) as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def no_kafka_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets configures its clients."""
    for name in ("TRAINSENTRY_KAFKA_CONFIG", "KAFKA_SECURITY_PROTOCOL", "KAFKA_SSL_CA_LOCATION",
                 "KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)


def publish_losses(settings: SenderSettings, trial: str) -> tuple[bool, object]:
    """Publish STEPS losses; (whether flush saw them all acknowledged, the final stats)."""
    publisher = TensorPublisher(trial, settings=settings, save_config=SaveConfig(save_interval=1))
    try:
        for step in range(STEPS):
            publisher.scalar("loss", 1.0 / (step + 1), step=step, collections=["losses"])
        delivered = publisher.flush(15)
    finally:
        publisher.close(timeout=2)
    return delivered, publisher.stats()


def losses_of(cluster: SecureCluster, topic: str, trial: str, expected: int,
              timeout: float = 15.0) -> list[ScalarEvent]:
    """The trial's events on ``topic``, read through TLS (until ``expected`` records or ``timeout``)."""
    return [event for key, event in read_records(cluster.bootstrap_servers, topic, expected,
                                                 timeout=timeout, **cluster.client_kwargs())
            if key == trial.encode()]


def nothing_of(cluster: SecureCluster, topic: str, trial: str) -> bool:
    """Whether ``topic`` holds no record of ``trial`` (its writers are closed: nothing is in flight)."""
    return losses_of(cluster, topic, trial, 10_000, timeout=3.0) == []


def follow_one_alert(cluster: SecureCluster, settings: SenderSettings, topic: str, trial: str) -> AlertFollower:
    """A follower with ``settings``; an alert for it, written through TLS; the follower, closed
    once it has seen the alert, or once it has failed to connect."""
    follower = AlertFollower(trial, settings=settings, poll_interval_ms=50)
    try:
        cluster.publish(topic, [(trial.encode(), encode(alert(trial, f"{trial}-alert")))])
        wait_until(lambda: follower.should_stop() or follower.stats().failures > 0)
    finally:
        follower.close()
    return follower


# --- getting through --------------------------------------------------------------------------

def test_publisher_and_follower_reach_a_tls_cluster_with_a_properties_file(
        tls: SecureCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    topics = tls.new_topics()
    config = tls.write_properties(tmp_path / "client.properties")
    failed_before = tls.endpoint.handshakes_failed
    settings = SenderSettings(bootstrap_servers=tls.bootstrap_servers, topic_prefix=topics.prefix,
                              kafka_config=config)

    delivered, stats = publish_losses(settings, "tls-run")
    assert delivered and stats.sent == STEPS
    assert [e.step for e in losses_of(tls, topics.tensors, "tls-run", STEPS)] == list(range(STEPS))

    # The follower configured by the environment alone, as a job's manifest would do it.
    monkeypatch.setenv("TRAINSENTRY_KAFKA_CONFIG", str(config))
    environment_only = SenderSettings(bootstrap_servers=tls.bootstrap_servers, topic_prefix=topics.prefix)
    follower = follow_one_alert(tls, environment_only, topics.alerts, "tls-run")
    assert follower.should_stop() and [a.id for a in follower.alerts] == ["tls-run-alert"]
    assert tls.endpoint.handshakes_failed == failed_before


def test_mutual_tls_with_a_client_certificate_and_an_encrypted_key(
        mtls: SecureCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    topics = mtls.new_topics()
    failed_before = mtls.endpoint.handshakes_failed
    settings = SenderSettings(bootstrap_servers=mtls.bootstrap_servers, topic_prefix=topics.prefix,
                              kafka_config=mtls.write_properties(tmp_path / "mtls.properties"))
    assert "ssl.key.password" in (tmp_path / "mtls.properties").read_text()

    delivered, stats = publish_losses(settings, "mtls-run")
    assert delivered and stats.sent == STEPS
    assert len(losses_of(mtls, topics.tensors, "mtls-run", STEPS)) == STEPS
    follower = follow_one_alert(mtls, settings, topics.alerts, "mtls-run")
    assert follower.should_stop()
    assert mtls.endpoint.handshakes_failed == failed_before

    # The same client without its certificate is turned away by the endpoint.
    without = SenderSettings(bootstrap_servers=mtls.bootstrap_servers, topic_prefix=topics.prefix,
                             kafka_properties=mtls.properties(client_certificate=False),
                             close_timeout_s=1)
    delivered, stats = publish_losses(without, "no-certificate")
    assert not delivered and stats.sent == 0
    assert mtls.endpoint.handshakes_failed > failed_before
    assert nothing_of(mtls, topics.tensors, "no-certificate")


def test_the_log_handler_and_the_hook_publish_through_tls(tls: SecureCluster, tmp_path: Path) -> None:
    topics = tls.new_topics()
    settings = SenderSettings(bootstrap_servers=tls.bootstrap_servers, topic_prefix=topics.prefix,
                              kafka_config=tls.write_properties(tmp_path / "client.properties"))
    handler = TrainsentryLogHandler("handler-run", settings=settings)
    logger = logging.getLogger("tests.secure.training")
    logger.addHandler(handler)
    try:
        logger.warning("epoch 1 loss=0.5;")
        assert handler.publisher.flush(15)
    finally:
        logger.removeHandler(handler)
        handler.close()
    lines = [(key, event) for key, event in read_records(tls.bootstrap_servers, topics.logs, 1,
                                                         **tls.client_kwargs())]
    assert [(k, e.line) for k, e in lines if isinstance(e, LogEvent)] == [(b"handler-run", "epoch 1 loss=0.5;")]

    torch = pytest.importorskip("torch")
    from trainsentry.producers.torch_hook import TrainsentryHook

    hook = TrainsentryHook("hook-run", save_interval=1, settings=settings)
    model = torch.nn.Linear(2, 1)
    hook.register(model, loss=torch.nn.MSELoss())
    torch.nn.MSELoss()(model(torch.ones(1, 2)), torch.zeros(1, 1))
    assert hook.publisher.flush(15)
    hook.close()
    names = {e.name for k, e in read_records(tls.bootstrap_servers, topics.tensors, 2,
                                             **tls.client_kwargs()) if k == b"hook-run"}
    assert {"weight", "bias"} <= names


# --- not getting through ----------------------------------------------------------------------

@pytest.mark.parametrize("client", ["plaintext", "wrong CA"])
def test_a_client_without_tls_or_trusting_another_ca_gets_nothing_through(
        tls: SecureCluster, client: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    # The cause is read from aiokafka's own log records: they must be made, whatever an earlier
    # command run in this process set aiokafka's level to.
    caplog.set_level(logging.WARNING, logger="aiokafka")
    topics = tls.new_topics()
    properties = None if client == "plaintext" else tls.properties(ca=tls.certificates.other_ca)
    settings = SenderSettings(bootstrap_servers=tls.bootstrap_servers, topic_prefix=topics.prefix,
                              kafka_properties=properties, close_timeout_s=1,
                              reconnect_max_backoff_s=1.0)
    failed_before = tls.endpoint.handshakes_failed

    delivered, stats = publish_losses(settings, "refused")
    follower = follow_one_alert(tls, settings, topics.alerts, "refused")

    assert not delivered and stats.sent == 0 and stats.lost == STEPS
    assert not follower.should_stop() and follower.stats().connects == 0
    # Both ends agree: the endpoint refused the handshakes, and nothing reached the topic.
    assert tls.endpoint.handshakes_failed >= failed_before + 2
    assert nothing_of(tls, topics.tensors, "refused")
    warnings = [r.getMessage() for r in caplog.records if "cannot reach Kafka" in r.getMessage()]
    assert len(warnings) == 2  # one for the publisher, one for the follower
    if client == "wrong CA":  # the reason said plainly, not only "unable to bootstrap"
        assert all("CERTIFICATE_VERIFY_FAILED" in w for w in warnings)


# --- secrets ----------------------------------------------------------------------------

def test_secrets_are_never_logged_nor_shown(tls: SecureCluster, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="aiokafka")  # its records carry the cause, and are checked too
    topics = tls.new_topics()
    # A SASL client at a TLS endpoint whose broker does no SASL: refused, and said why.
    properties = {**tls.properties(), "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                  "sasl.username": "alice", "sasl.password": SECRET}
    settings = SenderSettings(bootstrap_servers=tls.bootstrap_servers, topic_prefix=topics.prefix,
                              kafka_properties=properties, close_timeout_s=1)
    delivered, _ = publish_losses(settings, "sasl-run")
    follower = AlertFollower("sasl-run", settings=settings)
    assert wait_until(lambda: follower.stats().failures > 0)
    follower.close()

    assert not delivered
    assert any("cannot reach Kafka" in r.getMessage() and "Sasl" in r.getMessage()
               for r in caplog.records)
    assert SECRET not in caplog.text
    assert SECRET not in repr(settings) and SECRET not in repr(follower.options)


# --- the tap ----------------------------------------------------------------------------------

def test_the_tap_and_the_command_it_runs_publish_through_tls(tls: SecureCluster, tmp_path: Path) -> None:
    topics = tls.new_topics()
    config = tls.write_properties(tmp_path / "client.properties", ca=tls.certificates.other_ca)
    child = tmp_path / "child.py"
    # The command publishes through its own publisher too: it inherits how to connect.
    child.write_text(textwrap.dedent("""
        from trainsentry.producers import TensorPublisher
        print("hello from the command", flush=True)
        with TensorPublisher("tap-tls", worker="inner") as pub:
            pub.scalar("loss", 0.25, step=0)
            assert pub.flush(15), "the command's publisher did not get through"
    """))
    # The file trusts the wrong CA; -X puts the right one back: the command line wins.
    result = subprocess.run(
        [sys.executable, "-m", "trainsentry.producers.tap", "--trial", "tap-tls",
         "--bootstrap-servers", tls.bootstrap_servers, "--topic-prefix", topics.prefix,
         "--kafka-config", str(config), "-X", f"ssl.ca.location={tls.certificates.ca}",
         "--", sys.executable, str(child)],
        capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello from the command\n"
    lines = [e.line for k, e in read_records(tls.bootstrap_servers, topics.logs, 2, **tls.client_kwargs())]
    assert lines == ["hello from the command", "[trainsentry] command exited with code 0"]
    assert [e.value for k, e in read_records(tls.bootstrap_servers, topics.tensors, 1,
                                             **tls.client_kwargs())] == [0.25]
