"""A cluster that only speaks TLS, for the tests of every Kafka client of the project.

The embedded broker serves plaintext only, so a :class:`~tests.tls_endpoint.TlsEndpoint` stands in
front of it and the broker advertises the endpoint's port: after bootstrapping, every connection
a client opens goes through TLS too. Certificates are made at test time
(:func:`tests.certificates.make_certificates`). With ``mutual_tls`` the endpoint also requires a
client certificate signed by the same CA. A module-scoped fixture keeps one per test module::

    @pytest.fixture(scope="module")
    def cluster(tmp_path_factory):
        with secure_cluster(tmp_path_factory.mktemp("tls")) as running:
            yield running

    def test_x(cluster):
        topics = cluster.new_topics()
        props = cluster.properties()  # security.protocol=SSL, ssl.ca.location=<the CA>
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.certificates import CertificateFiles, make_certificates
from tests.tls_endpoint import TlsEndpoint
from trainsentry.consumers.broker import EmbeddedBroker, free_port
from trainsentry.protocol import Topics
from trainsentry.protocol.kafka_properties import KafkaProperties


@dataclass(frozen=True)
class SecureCluster:
    """The TLS address of a running broker and the files a client needs to reach it."""

    bootstrap_servers: str      # the TLS endpoint: the only address the broker advertises
    certificates: CertificateFiles
    mutual_tls: bool
    endpoint: TlsEndpoint
    broker: EmbeddedBroker

    def properties(self, *, ca: Path | None = None,
                   client_certificate: bool | None = None) -> dict[str, str]:
        """The librdkafka properties of a client trusting ``ca`` (default: the cluster's CA) and,
        by default when the cluster wants one, showing the client certificate (its key encrypted)."""
        certs = self.certificates
        props = {"security.protocol": "SSL", "ssl.ca.location": str(ca or certs.ca)}
        if self.mutual_tls if client_certificate is None else client_certificate:
            props.update({"ssl.certificate.location": str(certs.client_cert),
                          "ssl.key.location": str(certs.client_key),
                          "ssl.key.password": certs.client_key_password})
        return props

    def write_properties(self, path: Path, **options: Any) -> Path:
        """:meth:`properties` as a properties file (what ``--kafka-config`` reads)."""
        path.write_text("".join(f"{key}={value}\n" for key, value in self.properties(**options).items()))
        return path

    def client_kwargs(self) -> dict[str, Any]:
        """aiokafka arguments of a client that gets through, for the tests' own readers and writers."""
        return KafkaProperties.load(overrides=self.properties(), environ={}).client_kwargs()

    def new_topics(self, partitions: int = 4) -> Topics:
        """Fresh topic names, created through TLS (the plaintext port would advertise TLS back)."""
        topics = Topics(prefix=f"s{uuid.uuid4().hex[:10]}")
        asyncio.run(self._create(topics.all(), partitions))
        return topics

    def publish(self, topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> None:
        """Write ``(key, value)`` records as they are, through TLS."""
        asyncio.run(self._publish(topic, list(records)))

    async def _create(self, names: Iterable[str], partitions: int) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers, **self.client_kwargs())
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)
                                       for name in names])
        finally:
            await admin.close()

    async def _publish(self, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, **self.client_kwargs())
        await producer.start()
        try:
            for key, value in records:
                await producer.send(topic, value, key=key)
            await producer.flush()
        finally:
            await producer.stop()


@contextmanager
def secure_cluster(folder: Path, *, mutual_tls: bool = False) -> Iterator[SecureCluster]:
    """Certificates in ``folder``, a broker, and a TLS endpoint in front of it; all stopped after."""
    certs = make_certificates(folder)
    front = free_port()
    with EmbeddedBroker(advertised_port=front) as broker:
        endpoint = TlsEndpoint(front, broker.port, certs.server_cert, certs.server_key,
                               client_ca=certs.ca if mutual_tls else None).start()
        try:
            yield SecureCluster(f"127.0.0.1:{front}", certs, mutual_tls, endpoint, broker)
        finally:
            endpoint.stop()

