"""How the training side resolves its Kafka connection: where each setting comes from, and what
fails at construction (before training starts) rather than later in the background."""

from pathlib import Path

import pytest

from trainsentry.producers import AlertFollower, SenderSettings, TensorPublisher, TrainsentryLogHandler
from trainsentry.producers.kafka_client_options import KafkaClientOptions
from trainsentry.protocol.kafka_properties import KafkaConfigError

SECRET = "hunter2-never-shown"


@pytest.fixture(autouse=True)
def no_kafka_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRAINSENTRY_KAFKA_CONFIG", "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SECURITY_PROTOCOL",
                 "KAFKA_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)


def test_the_cluster_address_comes_from_the_argument_the_environment_or_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "client.properties"
    config.write_text("bootstrap.servers=kafka-1:9093\nclient.id=team-a\n")
    from_file = SenderSettings(kafka_config=config)
    assert from_file.resolved_bootstrap_servers() == "kafka-1:9093"
    assert SenderSettings().resolved_bootstrap_servers() == "localhost:9092"
    options = KafkaClientOptions.resolve(from_file, "default-id")
    assert options.connection == {"client_id": "team-a", "security_protocol": "PLAINTEXT"}
    assert KafkaClientOptions.resolve(SenderSettings(), "default-id").connection["client_id"] == "default-id"

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-2:9093")  # the environment over the file
    assert from_file.resolved_bootstrap_servers() == "kafka-2:9093"
    explicit = SenderSettings(bootstrap_servers="kafka-3:9093", kafka_config=config)
    assert explicit.resolved_bootstrap_servers() == "kafka-3:9093"

    monkeypatch.setenv("TRAINSENTRY_KAFKA_CONFIG", str(config))  # the file named by the environment
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS")
    assert SenderSettings().resolved_bootstrap_servers() == "kafka-1:9093"
    overridden = SenderSettings(kafka_properties={"client.id": "from-code"})
    assert KafkaClientOptions.resolve(overridden, "default-id").connection["client_id"] == "from-code"


def test_a_security_configuration_that_cannot_work_fails_at_construction_naming_the_property(
        tmp_path: Path) -> None:
    missing = tmp_path / "absent-ca.pem"
    settings = SenderSettings(bootstrap_servers="127.0.0.1:9", kafka_properties={
        "security.protocol": "SSL", "ssl.ca.location": str(missing)})
    for build in (lambda: TensorPublisher("bad-config", settings=settings),
                  lambda: AlertFollower("bad-config", settings=settings, start=False),
                  lambda: TrainsentryLogHandler("bad-config", settings=settings)):
        with pytest.raises(KafkaConfigError) as caught:
            build()
        message = str(caught.value)
        assert "'ssl.ca.location'" in message and str(missing) in message and "\n" not in message

    with pytest.raises(KafkaConfigError, match="'sasl.username'") as caught:
        TensorPublisher("bad-config", settings=SenderSettings(kafka_properties={
            "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", "sasl.password": SECRET}))
    assert SECRET not in str(caught.value)

    typo = tmp_path / "typo.properties"
    typo.write_text("security.protocol=SSL\nssl.ca.locaton=/etc/ca.pem\n")
    with pytest.raises(KafkaConfigError, match="'ssl.ca.locaton': unknown property"):
        AlertFollower("bad-config", settings=SenderSettings(kafka_config=typo), start=False)


def test_the_hook_reports_a_bad_configuration_at_construction_too() -> None:
    pytest.importorskip("torch")
    from trainsentry.producers.torch_hook import TrainsentryHook

    settings = SenderSettings(kafka_properties={"security.protocol": "SASL_SSL"})
    with pytest.raises(KafkaConfigError, match="'sasl.mechanism'"):
        TrainsentryHook("bad-config", settings=settings)


def test_a_password_is_in_no_repr() -> None:
    settings = SenderSettings(kafka_properties={"security.protocol": "SASL_PLAINTEXT",
                                                "sasl.mechanism": "PLAIN", "sasl.username": "alice",
                                                "sasl.password": SECRET})
    options = KafkaClientOptions.resolve(settings, "id")
    assert options.connection["sasl_plain_password"] == SECRET
    assert SECRET not in repr(settings) and SECRET not in repr(options)
