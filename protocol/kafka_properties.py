"""How every Kafka client of both sides connects: librdkafka-style properties, one way for all.

The same properties configure the sidecar, every command and the training-side library. They come
from three places, each overriding the one before:

1. a properties file (``--kafka-config FILE`` or ``$TRAINSENTRY_KAFKA_CONFIG``): ``key=value``
   lines, ``#`` comments, as librdkafka and the Java client read them;
2. environment variables in the convention of Confluent's images: ``KAFKA_`` and the property in
   upper case with dots as underscores (``KAFKA_SASL_PASSWORD`` is ``sasl.password``);
3. the command line (``-X key=value``, repeatable).

:meth:`KafkaProperties.client_kwargs` maps them onto aiokafka's ``security_protocol``,
``ssl_context`` and ``sasl_*`` arguments. Secrets (``sasl.password``, ``ssl.key.password``) never
appear in ``repr``, errors or logs.

>>> props = KafkaProperties.load(environ={"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
...     "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512", "KAFKA_SASL_USERNAME": "alice",
...     "KAFKA_SASL_PASSWORD": "s3cret"})
>>> kwargs = props.client_kwargs()
>>> kwargs["security_protocol"], kwargs["sasl_mechanism"], kwargs["sasl_plain_username"]
('SASL_PLAINTEXT', 'SCRAM-SHA-512', 'alice')
>>> "s3cret" in repr(props)
False
>>> KafkaProperties.load(overrides={"sasl.mechanism": "PLAIN"}, environ={}).client_kwargs()
Traceback (most recent call last):
...
trainsentry.protocol.kafka_properties.KafkaConfigError: Kafka property 'sasl.username': SASL mechanism PLAIN needs a username
"""

from __future__ import annotations

import importlib
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_KAFKA_CONFIG = "TRAINSENTRY_KAFKA_CONFIG"
ENV_PREFIX = "KAFKA_"

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")
SECRETS = frozenset({"sasl.password", "ssl.key.password"})

# Every property understood, with what it means; anything else in a file or on the command line is
# an error naming it (a typo must not silently connect in plaintext).
PROPERTIES: Mapping[str, str] = {
    "bootstrap.servers": "host:port[,host:port...] of the cluster",
    "security.protocol": "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    "sasl.mechanism": "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
    "sasl.mechanisms": "librdkafka's spelling of sasl.mechanism",
    "sasl.username": "the SASL user (PLAIN, SCRAM)",
    "sasl.password": "the SASL password (PLAIN, SCRAM)",
    "sasl.oauthbearer.token.provider": "import path module:attribute of an aiokafka "
                                       "AbstractTokenProvider class or factory (OAUTHBEARER)",
    "ssl.ca.location": "PEM file of the certificate authorities that sign the brokers' certificates",
    "ssl.certificate.location": "PEM file of this client's certificate (mutual TLS)",
    "ssl.key.location": "PEM file of this client's private key (mutual TLS)",
    "ssl.key.password": "password of ssl.key.location",
    "ssl.endpoint.identification.algorithm": "https (check the broker's host name, the default) or none",
    "client.id": "the client id the brokers log",
}


class KafkaConfigError(ValueError):
    """A Kafka property that cannot be used; the one-line message names it (never a secret)."""

    def __init__(self, prop: str, problem: str) -> None:
        super().__init__(f"Kafka property {prop!r}: {problem}")
        self.property = prop


@dataclass(frozen=True)
class KafkaProperties:
    """The resolved properties of one client; build with :meth:`load`."""

    values: Mapping[str, str] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)  # property -> where it came from

    def __repr__(self) -> str:
        shown = {k: ("***" if k in SECRETS else v) for k, v in sorted(self.values.items())}
        return f"KafkaProperties({shown})"

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None,
             overrides: Mapping[str, str] | None = None,
             environ: Mapping[str, str] = os.environ) -> KafkaProperties:
        """File (``path``, else ``$TRAINSENTRY_KAFKA_CONFIG``), then environment, then ``overrides``."""
        values: dict[str, str] = {}
        sources: dict[str, str] = {}
        file = path if path is not None else environ.get(ENV_KAFKA_CONFIG) or None
        if file is not None:
            for key, value in _read_file(Path(file)).items():
                values[key], sources[key] = value, str(file)
        for key in PROPERTIES:
            env = ENV_PREFIX + key.upper().replace(".", "_")
            if environ.get(env):
                values[key], sources[key] = environ[env], f"${env}"
        for key, value in (overrides or {}).items():
            _check_known(key)
            values[key], sources[key] = value, "the command line"
        if "sasl.mechanisms" in values:
            values.setdefault("sasl.mechanism", values.pop("sasl.mechanisms"))
        return cls(values, sources)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.values.get(key, default)

    @property
    def security_protocol(self) -> str:
        protocol = self.values.get("security.protocol", "").upper()
        if not protocol:  # SASL settings alone mean SASL, as librdkafka users expect
            protocol = "SASL_PLAINTEXT" if "sasl.mechanism" in self.values else "PLAINTEXT"
        if protocol not in PROTOCOLS:
            raise KafkaConfigError("security.protocol",
                                   f"expected one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        return protocol

    def client_kwargs(self) -> dict[str, Any]:
        """aiokafka keyword arguments: ``security_protocol``, ``ssl_context``, ``sasl_*``, ``client_id``."""
        protocol = self.security_protocol
        kwargs: dict[str, Any] = {"security_protocol": protocol}
        if "client.id" in self.values:
            kwargs["client_id"] = self.values["client.id"]
        if protocol in ("SSL", "SASL_SSL"):
            kwargs["ssl_context"] = self.ssl_context()
        elif any(key.startswith("ssl.") for key in self.values):
            key = next(key for key in sorted(self.values) if key.startswith("ssl."))
            raise KafkaConfigError(key, f"is set but security.protocol is {protocol}: "
                                        f"use SSL or SASL_SSL for TLS")
        if protocol.startswith("SASL_"):
            kwargs.update(self._sasl_kwargs())
        elif "sasl.mechanism" in self.values:
            raise KafkaConfigError("sasl.mechanism", f"is set but security.protocol is {protocol}: "
                                                     f"use SASL_PLAINTEXT or SASL_SSL")
        return kwargs

    def ssl_context(self) -> ssl.SSLContext:
        """Server verification against ``ssl.ca.location`` (else the system's), optional client cert."""
        ca = self.values.get("ssl.ca.location")
        try:
            context = ssl.create_default_context(cafile=_existing(ca, "ssl.ca.location") if ca else None)
        except ssl.SSLError as exc:
            raise KafkaConfigError("ssl.ca.location", f"the certificates in {ca} do not load "
                                                      f"({exc.reason or exc})") from None
        check = self.values.get("ssl.endpoint.identification.algorithm", "https").lower()
        if check not in ("https", "none", ""):
            raise KafkaConfigError("ssl.endpoint.identification.algorithm",
                                   f"expected https or none, got {check!r}")
        context.check_hostname = check == "https"
        cert, key = self.values.get("ssl.certificate.location"), self.values.get("ssl.key.location")
        if key and not cert:
            raise KafkaConfigError("ssl.certificate.location", "is needed with ssl.key.location")
        if cert:
            _existing(cert, "ssl.certificate.location")
            if key:
                _existing(key, "ssl.key.location")
            try:
                context.load_cert_chain(cert, key, self.values.get("ssl.key.password"))
            except (ssl.SSLError, OSError) as exc:
                prop = "ssl.key.location" if key else "ssl.certificate.location"
                raise KafkaConfigError(prop, f"the certificate and key do not load "
                                             f"({type(exc).__name__}: {exc.args[-1] if exc.args else exc})") from None
        return context

    def _sasl_kwargs(self) -> dict[str, Any]:
        mechanism = self.values.get("sasl.mechanism", "").upper()
        if mechanism not in MECHANISMS:
            raise KafkaConfigError("sasl.mechanism",
                                   f"expected one of {', '.join(MECHANISMS)}, got {mechanism!r}")
        if mechanism == "OAUTHBEARER":
            path = self.values.get("sasl.oauthbearer.token.provider")
            if not path:
                raise KafkaConfigError("sasl.oauthbearer.token.provider",
                                       "OAUTHBEARER needs a token provider (module:attribute)")
            return {"sasl_mechanism": mechanism, "sasl_oauth_token_provider": _token_provider(path)}
        username, password = self.values.get("sasl.username"), self.values.get("sasl.password")
        if not username:
            raise KafkaConfigError("sasl.username", f"SASL mechanism {mechanism} needs a username")
        if password is None:
            raise KafkaConfigError("sasl.password", f"SASL mechanism {mechanism} needs a password")
        return {"sasl_mechanism": mechanism, "sasl_plain_username": username,
                "sasl_plain_password": password}


def parse_assignment(text: str) -> tuple[str, str]:
    """``key=value`` from the command line (``-X``); the key must be a known property."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise KafkaConfigError(text.split("=")[0] or text, "expected KEY=VALUE")
    _check_known(key)
    return key, value.strip()


def _check_known(key: str) -> None:
    if key not in PROPERTIES:
        raise KafkaConfigError(key, "unknown property; known: " + ", ".join(PROPERTIES))


def _read_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KafkaConfigError(str(path), f"cannot read the properties file: {exc.strerror}") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise KafkaConfigError(f"{path}:{number}", "expected key=value")
        _check_known(key)
        values[key] = value.strip()
    return values


def _existing(path: str, prop: str) -> str:
    if not Path(path).is_file():
        raise KafkaConfigError(prop, f"no such file: {path}")
    return path


def _token_provider(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise KafkaConfigError("sasl.oauthbearer.token.provider",
                               f"cannot load {path!r}: {type(exc).__name__}: {exc}") from None
    # A class (or a factory) is called with no arguments; an instance is used as it is.
    if isinstance(target, type) or (callable(target) and not hasattr(target, "token")):
        return target()
    return target
