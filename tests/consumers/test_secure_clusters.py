"""The sidecar and the commands on clusters that want TLS or SASL, through real endpoints.

The TLS cluster is the embedded broker behind a real TLS endpoint (:mod:`tests.secure_cluster`),
which advertises only the endpoint: nothing gets through in plaintext, and the endpoint counts the
handshakes it refused. The SASL broker is the bundled Tansu started with ``--authentication``: it
offers SCRAM-SHA-256 and SCRAM-SHA-512 and refuses every login (this build keeps no users), so it
shows what a wrong password looks like, not a successful login. Every refusal is one line and
exit code 1, said at start-up, and no secret is ever printed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.secure_cluster import SecureCluster, secure_cluster
from tests.sidecar_harness import SidecarProcess
from tests.streams import losses, replay_alerts, write_config
from trainsentry.consumers.broker import broker_binary, free_port
from trainsentry.protocol import encode
from trainsentry.protocol.kafka_properties import ENV_KAFKA_CONFIG, PROPERTIES

pytestmark = pytest.mark.usefixtures("broker_binary")  # brokers of its own, or none reachable

SECRET = "hunter2-never-shown"
SCRAM = ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.username=alice"]


@pytest.fixture(autouse=True)
def no_kafka_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets configures its clients (the subprocesses inherit the environment)."""
    for name in (ENV_KAFKA_CONFIG, *("KAFKA_" + key.upper().replace(".", "_") for key in PROPERTIES)):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    with secure_cluster(tmp_path_factory.mktemp("tls")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def mtls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    with secure_cluster(tmp_path_factory.mktemp("mtls"), mutual_tls=True) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def authenticating_broker() -> Iterator[str]:
    """``tansu broker --authentication`` on a free loopback port: every client must log in."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen([broker_binary(), "broker", "--listener-url", url,
                                "--advertised-listener-url", url, "--authentication"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "the broker did not start"
                time.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainsentry.consumers.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def one_line(done: subprocess.CompletedProcess) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def publish_losses(cluster: SecureCluster, topic: str, trial: str) -> list:
    events = losses(trial, [0.3, 0.33, 0.31, 0.30, 0.28])
    cluster.publish(topic, [(event.trial.encode(), encode(event)) for event in events])
    return events


def tail_alert_ids(done: subprocess.CompletedProcess) -> set[str]:
    assert done.returncode == 0, done.stderr
    return {json.loads(line)["id"] for line in done.stdout.splitlines()}


# --- TLS, end to end -------------------------------------------------------------------------------

def test_the_sidecar_and_tail_through_tls(tls: SecureCluster, tmp_path: Path) -> None:
    """The sidecar reads its properties from a file, tail from the environment; the alert comes
    through the TLS endpoint, which every connection went through."""
    topics = tls.new_topics()
    config = write_config(tmp_path)
    events = publish_losses(tls, topics.tensors, "tls-1")
    expected = replay_alerts(config, events)
    assert expected
    connections = tls.endpoint.connections
    properties = tls.write_properties(tmp_path / "client.properties")
    with SidecarProcess(tls.bootstrap_servers, topics, config,
                        extra_args=["--kafka-config", str(properties)]) as sidecar:
        tail = cli("tail", "--bootstrap-servers", tls.bootstrap_servers, "--topic-prefix", topics.prefix,
                   "--from", "beginning", "--json", "--max-alerts", str(len(expected)),
                   env={"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": str(tls.certificates.ca)})
        assert sidecar.stop() == 0, sidecar.stderr
    assert tail_alert_ids(tail) == set(expected)
    assert tls.endpoint.connections > connections


def test_mutual_tls_and_no_secret_in_logs_or_metrics(mtls: SecureCluster, tmp_path: Path) -> None:
    """The client key's password comes from the file (sidecar) or the environment (tail); it is in
    neither's output, even at DEBUG, nor on /metrics or the probes."""
    topics = mtls.new_topics()
    config = write_config(tmp_path)
    expected = replay_alerts(config, publish_losses(mtls, topics.tensors, "mtls-1"))
    password = mtls.certificates.client_key_password
    properties = mtls.write_properties(tmp_path / "client.properties")
    assert password in properties.read_text()
    port = free_port()
    with SidecarProcess(mtls.bootstrap_servers, topics, config,
                        extra_args=["--kafka-config", str(properties), "--log-level", "DEBUG",
                                    "--metrics-port", str(port)]) as sidecar:
        tail = cli("tail", "--topic-prefix", topics.prefix, "--from", "beginning", "--json",
                   "--max-alerts", str(len(expected)), "--log-level", "DEBUG",
                   env={"KAFKA_BOOTSTRAP_SERVERS": mtls.bootstrap_servers,
                        "KAFKA_SECURITY_PROTOCOL": "SSL",
                        "KAFKA_SSL_CA_LOCATION": str(mtls.certificates.ca),
                        "KAFKA_SSL_CERTIFICATE_LOCATION": str(mtls.certificates.client_cert),
                        "KAFKA_SSL_KEY_LOCATION": str(mtls.certificates.client_key),
                        "KAFKA_SSL_KEY_PASSWORD": password})
        pages = [urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5).read().decode()
                 for path in ("/metrics", "/healthz")]
        assert sidecar.stop() == 0, sidecar.stderr
    assert tail_alert_ids(tail) == set(expected)
    for text in (sidecar.stderr, tail.stderr, tail.stdout, *pages):
        assert password not in text


def test_a_plaintext_client_is_refused_by_the_tls_endpoint(tls: SecureCluster) -> None:
    topics = tls.new_topics()
    refused = tls.endpoint.handshakes_failed
    done = cli("tail", "--bootstrap-servers", tls.bootstrap_servers, "--topic-prefix", topics.prefix,
               "--no-follow")
    assert done.returncode == 1
    assert "closed the connection (security.protocol is PLAINTEXT)" in one_line(done)
    assert tls.endpoint.handshakes_failed > refused


def test_a_certificate_of_another_authority_is_not_trusted(tls: SecureCluster, tmp_path: Path) -> None:
    properties = tls.write_properties(tmp_path / "other.properties", ca=tls.certificates.other_ca)
    done = cli("tail", "--bootstrap-servers", tls.bootstrap_servers, "--kafka-config", str(properties),
               "--no-follow")
    assert done.returncode == 1
    assert "TLS certificate is not trusted" in one_line(done) and "ssl.ca.location" in done.stderr


def test_mutual_tls_without_a_client_certificate_is_refused(mtls: SecureCluster, tmp_path: Path) -> None:
    properties = mtls.write_properties(tmp_path / "no-cert.properties", client_certificate=False)
    done = cli("tail", "--bootstrap-servers", mtls.bootstrap_servers, "--kafka-config", str(properties),
               "--no-follow")
    assert done.returncode == 1
    assert "client certificate" in one_line(done)


# --- SASL ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_a_refused_scram_login_is_one_line_at_start_up(authenticating_broker: str, mechanism: str,
                                                       tmp_path: Path) -> None:
    """The broker negotiates the mechanism, then refuses the login: said plainly, at once (not after
    a connection timeout), for tail and for the sidecar, without the password."""
    config = write_config(tmp_path)
    env = {"KAFKA_SASL_PASSWORD": SECRET}
    for command in (["tail", "--no-follow"], ["run", "--config", str(config)]):
        done = cli(*command, "--bootstrap-servers", authenticating_broker, *SCRAM,
                   "-X", f"sasl.mechanism={mechanism}", env=env)
        assert done.returncode == 1
        assert f"authentication failed for user 'alice' ({mechanism})" in one_line(done)
        assert "sasl.password" in done.stderr and SECRET not in done.stderr + done.stdout


def test_a_client_that_skips_authentication_is_told_the_listener_wants_it(
        authenticating_broker: str) -> None:
    done = cli("tail", "--bootstrap-servers", authenticating_broker, "--no-follow")
    assert done.returncode == 1
    assert "closed the connection (security.protocol is PLAINTEXT)" in one_line(done)


def test_a_sasl_client_against_a_listener_without_sasl(bootstrap_servers: str) -> None:
    done = cli("tail", "--bootstrap-servers", bootstrap_servers, *SCRAM, "-X", "sasl.mechanism=SCRAM-SHA-512",
               "--no-follow", env={"KAFKA_SASL_PASSWORD": SECRET})
    assert done.returncode == 1
    assert "does not accept SASL mechanism SCRAM-SHA-512" in one_line(done)
    assert SECRET not in done.stderr
