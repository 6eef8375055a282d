"""The pre-flight check: one connection to the cluster, and why it failed in one line.

aiokafka logs the cause of a failed bootstrap (a refused TLS handshake, a SASL mechanism the broker
does not offer) and raises only "Unable to bootstrap" to its caller; a refused SCRAM login can even
surface as a bare ``KeyError('v')``, and a TLS client talking to a plaintext listener waits for the
request timeout. :func:`check_connection` opens one connection to each bootstrap server itself,
with the client's own security settings (version look-up, SASL handshake and login, one metadata
request), so the real exception is raised here; :func:`explain` turns it into one line that says
what to check. Every command runs it before its first Kafka client starts (see
:func:`trainsentry.consumers.broker.ensure_topics`).

A failure is a :class:`~trainsentry.consumers.broker.BrokerError` (exit code 1). No secret is ever
part of the message: the password is not in the exceptions explained, and is blanked out if a
broker echoed it back.

>>> explain(ConnectionRefusedError(111, "Connection refused"), Attempt("k:9092", "PLAINTEXT"))
"cannot reach Kafka at 'k:9092': nothing accepts connections there (connection refused); is the broker running, and is this its address?"
>>> explain(KeyError("v"), Attempt("k:9093", "SASL_SSL", "SCRAM-SHA-512", "alice"))
"Kafka at 'k:9093': authentication failed for user 'alice' (SCRAM-SHA-512): check sasl.username and sasl.password"
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainsentry.consumers.settings import KafkaSettings

CHECK_TIMEOUT_S = 10.0
MAX_DETAIL = 200


@dataclass(frozen=True)
class Attempt:
    """What a connection was tried with (what a message may name: never the password)."""

    server: str
    protocol: str
    mechanism: str | None = None
    username: str | None = None
    timeout: float = CHECK_TIMEOUT_S

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")


async def check_connection(settings: KafkaSettings, timeout: float = CHECK_TIMEOUT_S) -> None:
    """Connect to the bootstrap servers in turn until one answers a metadata request with the
    settings' security; :class:`BrokerError` with :func:`explain`'s line when none does."""
    from trainsentry.consumers.broker import BrokerError

    kwargs = settings.client_kwargs("check")
    servers = kwargs.pop("bootstrap_servers")
    failures: list[tuple[Attempt, BaseException]] = []
    for server in [part.strip() for part in servers.split(",") if part.strip()]:
        attempt = Attempt(server, settings.security_protocol, kwargs.get("sasl_mechanism"),
                          kwargs.get("sasl_plain_username"), timeout)
        try:
            await asyncio.wait_for(_connect(server, kwargs, timeout), timeout)
            return
        except Exception as exc:
            failures.append((attempt, exc))
    attempt, error = min(failures, key=lambda failure: _rank(failure[1]))
    message = explain(error, attempt)
    password = settings.connection.get("sasl_plain_password")
    if password:
        message = message.replace(password, "***")
    raise BrokerError(message)


async def _connect(server: str, kwargs: dict, timeout: float) -> None:
    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    host, _, port = server.rpartition(":")
    conn = await create_conn(host.strip("[]"), int(port), request_timeout_ms=int(timeout * 1000), **kwargs)
    try:
        # A broker that requires authentication drops a client that skipped it here.
        await conn.send(MetadataRequest([]))
    finally:
        conn.close()


def _rank(error: BaseException) -> int:
    """The failure to report when every server failed: the most telling first."""
    if _is_authentication_failure(error) or _is_mechanism_refused(error):
        return 0
    if isinstance(error, ssl.SSLError):
        return 1
    if isinstance(error, (ConnectionRefusedError, socket.gaierror)):
        return 3
    return 2


def explain(error: BaseException, attempt: Attempt) -> str:
    """One line saying why ``attempt`` failed with ``error``, and what to check."""
    at, protocol = f"Kafka at {attempt.server!r}", attempt.protocol
    unreachable = f"cannot reach {at}"
    if _is_authentication_failure(error):
        return (f"{at}: authentication failed for user {attempt.username!r} ({attempt.mechanism}): "
                f"check sasl.username and sasl.password")
    if _is_mechanism_refused(error):
        offered = str(error).partition("Enabled mechanisms are:")[2].strip()
        return (f"{at} does not accept SASL mechanism {attempt.mechanism}"
                + (f" (it offers {offered})" if offered else "")
                + ": check sasl.mechanism, and security.protocol (a listener without SASL wants "
                  "PLAINTEXT or SSL)")
    if isinstance(error, ssl.SSLCertVerificationError):
        detail = error.verify_message or str(error)
        if "mismatch" in detail:
            return (f"{at}: its TLS certificate is not for this host name ({detail}): connect by a "
                    f"name the certificate holds, or set ssl.endpoint.identification.algorithm=none")
        return f"{at}: its TLS certificate is not trusted ({detail}): check ssl.ca.location"
    if isinstance(error, ssl.SSLError):
        reason = (error.reason or str(error)).upper()
        if "CERTIFICATE_REQUIRED" in reason:
            return (f"{at} wants a client certificate (mutual TLS): set ssl.certificate.location and "
                    f"ssl.key.location")
        if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason:
            return (f"{at} does not speak TLS (security.protocol is {protocol}): a plaintext "
                    f"listener wants PLAINTEXT or SASL_PLAINTEXT")
        return f"{at}: the TLS handshake failed ({_short(error.reason or str(error))})"
    if isinstance(error, TimeoutError):
        if attempt.tls:
            return (f"{at}: no TLS handshake within {attempt.timeout:g}s: is it a plaintext "
                    f"listener? (security.protocol is {protocol}; a plaintext listener wants "
                    f"PLAINTEXT or SASL_PLAINTEXT)")
        return f"{unreachable}: no answer within {attempt.timeout:g}s"
    if _is_connection_closed(error):
        if protocol == "PLAINTEXT":
            return (f"{at} closed the connection (security.protocol is PLAINTEXT): does the "
                    f"listener want TLS (SSL, SASL_SSL) or SASL (SASL_PLAINTEXT)?")
        if protocol == "SASL_PLAINTEXT":
            return (f"{at} closed the connection (security.protocol is SASL_PLAINTEXT, "
                    f"sasl.mechanism {attempt.mechanism}): does the listener want TLS (SASL_SSL), "
                    f"or another SASL mechanism?")
        return (f"{at} closed the connection after the TLS handshake: does it want a client "
                f"certificate (ssl.certificate.location, ssl.key.location) or SASL (SASL_SSL)?")
    if isinstance(error, ConnectionRefusedError):
        return (f"{unreachable}: nothing accepts connections there (connection refused); is the "
                f"broker running, and is this its address?")
    if isinstance(error, socket.gaierror):
        return f"{unreachable}: its host name does not resolve ({error.strerror or error})"
    if isinstance(error, OSError):
        return f"{unreachable}: {error.strerror or _short(str(error))}"
    return f"{unreachable}: {type(error).__name__}: {_short(str(error))}"


def _is_authentication_failure(error: BaseException) -> bool:
    from aiokafka.errors import AuthenticationFailedError, SaslAuthenticationFailed

    if isinstance(error, (SaslAuthenticationFailed, AuthenticationFailedError)):
        return True
    # aiokafka's SCRAM client reads the server's final message for its signature ("v="); a broker
    # that refuses the proof sends an error ("e=") instead, which aiokafka fails to parse.
    return isinstance(error, KeyError) and error.args == ("v",) or (
        isinstance(error, ValueError) and "wrong signature" in str(error))


def _is_mechanism_refused(error: BaseException) -> bool:
    from aiokafka.errors import UnsupportedSaslMechanismError

    return isinstance(error, UnsupportedSaslMechanismError)


def _is_connection_closed(error: BaseException) -> bool:
    from aiokafka.errors import KafkaConnectionError

    if isinstance(error, KafkaConnectionError):
        return "closed" in str(error).lower()
    return isinstance(error, (ConnectionResetError, asyncio.IncompleteReadError))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL - 3] + "..."
