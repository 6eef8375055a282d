"""``--kafka-config``, ``-X`` and the ``KAFKA_*`` variables on every command that talks to Kafka:
precedence, one place that makes the clients' arguments, and every refusal in one line (exit 2)
without a secret in it. No broker: the properties are checked before any connection."""

from __future__ import annotations

import argparse
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from tests.certificates import CertificateFiles, make_certificates
from trainsentry.consumers.cli import build_parser
from trainsentry.consumers.commands.options import bootstrap_given, kafka_settings
from trainsentry.protocol.kafka_properties import ENV_KAFKA_CONFIG, PROPERTIES
from trainsentry.protocol.settings import DEFAULT_BOOTSTRAP

SECRET = "hunter2-never-shown"
KAFKA_COMMANDS = {"run": ["--config", "rules.toml"], "tail": [], "record": ["--output", "x"],
                  "replay": ["--config", "rules.toml", "--output", "-"], "ui": [],
                  "report": ["--config", "rules.toml", "--output", "r.html"],
                  "notify": ["--to", "json://localhost"], "demo": []}


@pytest.fixture(autouse=True)
def no_kafka_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets configures its clients."""
    for name in (ENV_KAFKA_CONFIG, *("KAFKA_" + key.upper().replace(".", "_") for key in PROPERTIES)):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def parse(command: str, *extra: str) -> argparse.Namespace:
    return build_parser().parse_args([command, *KAFKA_COMMANDS[command], *extra])


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainsentry.consumers.cli", *args],
                          capture_output=True, text=True, timeout=60, env=env)


def write(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return path


@pytest.mark.parametrize("command", sorted(KAFKA_COMMANDS))
def test_every_kafka_command_takes_the_properties(command: str, tmp_path: Path) -> None:
    file = write(tmp_path / "client.properties", {"client.id": "team-a"})
    args = parse(command, "--kafka-config", str(file), "-X", "bootstrap.servers=k:1")
    assert args.kafka_config == str(file) and args.kafka_property == ["bootstrap.servers=k:1"]
    assert bootstrap_given(args) == "k:1"


def test_file_then_environment_then_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 certs: CertificateFiles) -> None:
    file = write(tmp_path / "client.properties", {
        "bootstrap.servers": "from-file:9093", "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "file-user", "sasl.password": "file-pw",
        "ssl.ca.location": str(certs.ca)})
    monkeypatch.setenv(ENV_KAFKA_CONFIG, str(file))
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "env-user")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "env-pw")
    settings = kafka_settings(parse("tail", "-X", "sasl.password=cli-pw"))
    kwargs = settings.client_kwargs("reader")
    assert settings.bootstrap_servers == "from-file:9093"
    assert kwargs["bootstrap_servers"] == "from-file:9093"
    assert kwargs["sasl_plain_username"] == "env-user"        # environment over the file
    assert kwargs["sasl_plain_password"] == "cli-pw"          # the command line over both
    assert kwargs["security_protocol"] == "SASL_SSL" and isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert kwargs["client_id"] == "trainsentry-reader"
    assert "cli-pw" not in repr(settings) and "env-pw" not in repr(settings)

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "from-env:9093")
    assert kafka_settings(parse("tail")).bootstrap_servers == "from-env:9093"
    assert kafka_settings(parse("tail", "-X", "bootstrap.servers=from-x:9093")).bootstrap_servers == "from-x:9093"
    explicit = parse("tail", "--bootstrap-servers", "explicit:9093", "-X", "bootstrap.servers=from-x:9093")
    assert kafka_settings(explicit).bootstrap_servers == "explicit:9093"


def test_a_file_given_on_the_command_line_replaces_the_one_of_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_KAFKA_CONFIG, str(write(tmp_path / "env.properties", {"client.id": "env"})))
    given = write(tmp_path / "given.properties", {"client.id": "given"})
    settings = kafka_settings(parse("tail", "--kafka-config", str(given)))
    assert settings.client_kwargs("reader")["client_id"] == "given"   # client.id is used as it is


def test_no_properties_is_plaintext_to_the_default_cluster() -> None:
    settings = kafka_settings(parse("run"))
    assert settings.bootstrap_servers == DEFAULT_BOOTSTRAP
    assert settings.connection == {"security_protocol": "PLAINTEXT"}
    assert settings.client_kwargs() == {"bootstrap_servers": DEFAULT_BOOTSTRAP, "client_id": "trainsentry",
                                        "security_protocol": "PLAINTEXT"}


@pytest.mark.parametrize("args, named", [
    (["-X", "sasl.pasword=x"], "'sasl.pasword': unknown property"),
    (["-X", "novalue"], "'novalue': expected KEY=VALUE"),
    (["--kafka-config", "/nonexistent/client.properties"], "cannot read the properties file"),
    (["-X", "sasl.mechanism=SCRAM-SHA-512", "-X", f"sasl.password={SECRET}"], "'sasl.username'"),
    (["-X", "security.protocol=SSL", "-X", "ssl.ca.location=/nonexistent/ca.pem"], "'ssl.ca.location': no such file"),
    (["-X", "security.protocol=TLS"], "'security.protocol': expected one of"),
])
def test_a_property_that_cannot_be_used_is_one_line_naming_it_exit_2(args: list[str], named: str) -> None:
    done = cli("tail", "--bootstrap-servers", "127.0.0.1:1", *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], done.stderr
    assert SECRET not in done.stderr and "Traceback" not in done.stderr


def test_a_certificate_that_does_not_load_is_one_line_for_the_sidecar_too(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    file = write(tmp_path / "client.properties", {"security.protocol": "SSL", "ssl.ca.location": str(bad)})
    config = tmp_path / "rules.toml"
    config.write_text('[[rules]]\ntype = "LossNotDecreasing"\n')
    done = cli("run", "--config", str(config), "--kafka-config", str(file))
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "'ssl.ca.location': the certificates in" in done.stderr


def test_help_shows_no_secret(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "KAFKA_SASL_PASSWORD": SECRET,
           ENV_KAFKA_CONFIG: str(write(tmp_path / "c.properties", {"sasl.password": SECRET}))}
    for command in ("run", "tail", "notify", "demo"):
        done = cli(command, "--help", env=env)
        assert done.returncode == 0 and "--kafka-config" in done.stdout and "-X KEY=VALUE" in done.stdout
        assert SECRET not in done.stdout + done.stderr
