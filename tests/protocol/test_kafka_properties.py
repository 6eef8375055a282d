"""Kafka client properties: where they come from, what they map to, and every refusal in one line."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from tests.certificates import CertificateFiles, make_certificates
from trainsentry.protocol.kafka_properties import (
    PROPERTIES,
    KafkaConfigError,
    KafkaProperties,
    parse_assignment,
)

SCRAM = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
         "sasl.username": "alice", "sasl.password": "pw-from-file"}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def write(path: Path, values: dict[str, str]) -> Path:
    path.write_text("# a comment\n\n" + "".join(f"{k} = {v}\n" for k, v in values.items()))
    return path


def test_file_then_environment_then_command_line(tmp_path: Path, certs: CertificateFiles) -> None:
    file = write(tmp_path / "client.properties", {**SCRAM, "ssl.ca.location": str(certs.ca)})
    env = {"TRAINSENTRY_KAFKA_CONFIG": str(file), "KAFKA_SASL_USERNAME": "bob",
           "KAFKA_SASL_PASSWORD": "pw-from-env"}
    props = KafkaProperties.load(overrides={"sasl.password": "pw-from-cli"}, environ=env)
    kwargs = props.client_kwargs()
    assert kwargs["sasl_plain_username"] == "bob"             # environment over file
    assert kwargs["sasl_plain_password"] == "pw-from-cli"     # command line over both
    assert kwargs["security_protocol"] == "SASL_SSL" and kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)
    assert props.sources["sasl.username"] == "$KAFKA_SASL_USERNAME"
    assert props.sources["security.protocol"] == str(file)


def test_an_explicit_file_wins_over_the_environment_variable_naming_one(tmp_path: Path) -> None:
    named = write(tmp_path / "a.properties", {"client.id": "from-env-file"})
    given = write(tmp_path / "b.properties", {"client.id": "from-option"})
    props = KafkaProperties.load(given, environ={"TRAINSENTRY_KAFKA_CONFIG": str(named)})
    assert props.client_kwargs()["client_id"] == "from-option"


def test_nothing_configured_is_plaintext() -> None:
    assert KafkaProperties.load(environ={}).client_kwargs() == {"security_protocol": "PLAINTEXT"}


def test_sasl_settings_alone_mean_sasl_and_librdkafka_spelling_is_accepted() -> None:
    props = KafkaProperties.load(overrides={"sasl.mechanisms": "PLAIN", "sasl.username": "u",
                                            "sasl.password": "p"}, environ={})
    assert props.client_kwargs()["security_protocol"] == "SASL_PLAINTEXT"
    assert props.client_kwargs()["sasl_mechanism"] == "PLAIN"


def test_ssl_context_verifies_the_server_and_loads_a_client_certificate(certs: CertificateFiles) -> None:
    props = KafkaProperties.load(overrides={
        "security.protocol": "SSL", "ssl.ca.location": str(certs.ca),
        "ssl.certificate.location": str(certs.client_cert), "ssl.key.location": str(certs.client_key),
        "ssl.key.password": certs.client_key_password}, environ={})
    context = props.client_kwargs()["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    off = KafkaProperties.load(overrides={"security.protocol": "SSL",
                                          "ssl.endpoint.identification.algorithm": "none"}, environ={})
    assert not off.ssl_context().check_hostname


@pytest.mark.parametrize("values, prop, words", [
    ({"sasl.mechansim": "PLAIN"}, "sasl.mechansim", "unknown property"),
    ({"security.protocol": "TLS"}, "security.protocol", "expected one of"),
    ({"security.protocol": "SASL_SSL", "sasl.mechanism": "GSSAPI"}, "sasl.mechanism", "expected one of"),
    ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-256"}, "sasl.username",
     "needs a username"),
    ({"sasl.mechanism": "PLAIN", "sasl.username": "u"}, "sasl.password", "needs a password"),
    ({"security.protocol": "SSL", "ssl.ca.location": "/nonexistent/ca.pem"}, "ssl.ca.location",
     "no such file"),
    ({"security.protocol": "PLAINTEXT", "ssl.ca.location": "/x"}, "ssl.ca.location", "use SSL or SASL_SSL"),
    ({"security.protocol": "SSL", "sasl.mechanism": "PLAIN"}, "sasl.mechanism",
     "use SASL_PLAINTEXT or SASL_SSL"),
    ({"sasl.mechanism": "OAUTHBEARER"}, "sasl.oauthbearer.token.provider", "needs a token provider"),
    ({"sasl.mechanism": "OAUTHBEARER", "sasl.oauthbearer.token.provider": "no_such_module:Provider"},
     "sasl.oauthbearer.token.provider", "cannot load"),
    ({"security.protocol": "SSL", "ssl.endpoint.identification.algorithm": "dns"},
     "ssl.endpoint.identification.algorithm", "expected https or none"),
])
def test_each_refusal_is_one_line_naming_the_property(tmp_path: Path, values: dict[str, str],
                                                      prop: str, words: str) -> None:
    file = write(tmp_path / "client.properties", values)
    with pytest.raises(KafkaConfigError) as caught:
        KafkaProperties.load(file, environ={}).client_kwargs()
    message = str(caught.value)
    assert "\n" not in message and f"'{prop}'" in message and words in message


def test_a_certificate_that_does_not_load_is_named(tmp_path: Path, certs: CertificateFiles) -> None:
    props = KafkaProperties.load(overrides={
        "security.protocol": "SSL", "ssl.certificate.location": str(certs.client_cert),
        "ssl.key.location": str(certs.client_key), "ssl.key.password": "wrong-key-password"}, environ={})
    with pytest.raises(KafkaConfigError, match="'ssl.key.location': the certificate and key do not load") as caught:
        props.client_kwargs()
    assert "wrong-key-password" not in str(caught.value)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(KafkaConfigError, match="'ssl.ca.location'"):
        KafkaProperties.load(overrides={"security.protocol": "SSL", "ssl.ca.location": str(garbage)},
                             environ={}).client_kwargs()


def test_missing_file_and_bad_lines_are_named(tmp_path: Path) -> None:
    with pytest.raises(KafkaConfigError, match="cannot read the properties file"):
        KafkaProperties.load(tmp_path / "absent.properties", environ={})
    bad = tmp_path / "bad.properties"
    bad.write_text("security.protocol\n")
    with pytest.raises(KafkaConfigError, match=r"bad.properties:1': expected key=value"):
        KafkaProperties.load(bad, environ={})


def test_secrets_never_show(tmp_path: Path) -> None:
    props = KafkaProperties.load(overrides={**SCRAM, "ssl.key.password": "key-secret"}, environ={})
    assert "pw-from-file" not in repr(props) and "key-secret" not in repr(props)
    assert "pw-from-file" not in str(props)


def test_environment_variables_other_than_known_properties_are_ignored() -> None:
    props = KafkaProperties.load(environ={"KAFKA_HEAP_OPTS": "-Xmx1G", "KAFKA_CLIENT_ID": "me"})
    assert props.values == {"client.id": "me"}


def test_command_line_assignments() -> None:
    assert parse_assignment("sasl.username = alice") == ("sasl.username", "alice")
    with pytest.raises(KafkaConfigError, match="expected KEY=VALUE"):
        parse_assignment("sasl.username")
    with pytest.raises(KafkaConfigError, match="unknown property"):
        parse_assignment("sasl.user=alice")
    assert all(PROPERTIES[key] for key in PROPERTIES)  # every property says what it means


class TokenProvider:
    async def token(self) -> str:
        return "a-token"


def test_oauthbearer_token_provider_by_import_path() -> None:
    props = KafkaProperties.load(overrides={
        "security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER",
        "sasl.oauthbearer.token.provider": f"{__name__}:TokenProvider"}, environ={})
    kwargs = props.client_kwargs()
    assert isinstance(kwargs["sasl_oauth_token_provider"], TokenProvider)
