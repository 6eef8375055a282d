"""The deployment files and the Kafka client: metrics and probes reachable where they are scraped,
and the Kafka client properties and passwords taken from secrets, never written into the files.

Like tests/test_deploy.py: no Docker engine, no broker; the properties the deployments mount are
read by the real loader.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from tests.deploy_files import (
    COMPOSE,
    DEPLOY,
    command_lines,
    k8s_containers,
    load_compose,
    load_manifest,
    pod_specs,
)
from trainsentry.protocol.kafka_properties import KafkaProperties

COMMANDS = command_lines()


def test_metrics_and_probes_listen_beyond_loopback_where_they_are_scraped() -> None:
    """The CLI serves them on loopback unless told: every deployed sidecar says 0.0.0.0."""
    served = [c for c in COMMANDS if c.argv[1:2] == ["run"] and c.option("--metrics-port")]
    assert {c.where.split()[0] for c in served} >= {"Dockerfile", "compose.yaml", "training-with-sidecar.yaml"}
    for command in served:
        assert command.option("--metrics-bind") == "0.0.0.0", command.where


TRAINSENTRY_SERVICES = ("sidecar", "training", "tail")
SECRET_VARIABLES = ("KAFKA_SASL_PASSWORD", "KAFKA_SSL_KEY_PASSWORD")


def load_properties(text: str, tmp_path: Path) -> KafkaProperties:
    """The properties as every client would read them; a property that cannot be used fails here."""
    path = tmp_path / "client.properties"
    path.write_text(text, encoding="utf-8")
    properties = KafkaProperties.load(path, environ={})
    properties.client_kwargs()
    return properties


def test_compose_kafka_client_settings_come_from_a_secret_and_an_env_file(tmp_path: Path) -> None:
    compose = load_compose()
    declared = compose.get("secrets", {})
    for name in TRAINSENTRY_SERVICES:
        service = compose["services"][name]
        [secret] = service["secrets"]
        path = service["environment"]["TRAINSENTRY_KAFKA_CONFIG"]
        assert path == f"/run/secrets/{secret}", f"{name}: TRAINSENTRY_KAFKA_CONFIG is not its secret"
        source = COMPOSE.parent / declared[secret]["file"]
        assert source.is_file(), f"secret {secret}: {source} does not exist"
        assert load_properties(source.read_text(encoding="utf-8"), tmp_path).security_protocol == "PLAINTEXT"
        # Passwords come from an env file that stays out of git, never from this file.
        env_files = [e if isinstance(e, dict) else {"path": e} for e in service.get("env_file", [])]
        assert any(e["path"] == "./kafka-client.env" and e.get("required") is False for e in env_files), name
        assert not set(SECRET_VARIABLES) & set(service.get("environment", {})), name
    assert "kafka-client.env" in (DEPLOY / ".gitignore").read_text(encoding="utf-8").split()


def test_manifest_kafka_client_settings_come_from_the_secret(tmp_path: Path) -> None:
    docs = load_manifest()
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    checked = 0
    for _, spec in pod_specs(docs):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in k8s_containers(spec):
            env = {e["name"]: e for e in container.get("env", [])}
            path = PurePosixPath(env["TRAINSENTRY_KAFKA_CONFIG"]["value"])
            mount = next(m for m in container.get("volumeMounts", []) if PurePosixPath(m["mountPath"]) == path.parent)
            secret = secrets[volumes[mount["name"]]["secret"]["secretName"]]
            load_properties(secret["stringData"][path.name], tmp_path)
            for variable in SECRET_VARIABLES:
                if variable in env:
                    assert "value" not in env[variable], f"{container['name']}: {variable} as a literal"
            password = env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
            assert password["name"] == secret["metadata"]["name"] and password["key"] in secret["stringData"]
            checked += 1
    assert checked == 2, "the sidecar and the training container both read the Kafka client Secret"
