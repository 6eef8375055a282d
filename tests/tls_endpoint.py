"""A real TLS endpoint in front of the embedded broker, which serves plaintext only.

Clients speak TLS to :attr:`TlsEndpoint.port`; the endpoint terminates TLS (verifying a client
certificate when ``require_client_cert``) and forwards the bytes to the broker. The broker
advertises the endpoint's port, so every connection a client opens goes through TLS.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from pathlib import Path


class TlsEndpoint:
    """TLS on ``port`` (loopback), plaintext to ``target_port``; runs its own event loop thread."""

    def __init__(self, port: int, target_port: int, cert: Path, key: Path,
                 client_ca: Path | None = None) -> None:
        self.port = port
        self.target_port = target_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        if client_ca is not None:  # mutual TLS: a client without a certificate of this CA is refused
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(client_ca)
        self.handshakes_failed = 0
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> TlsEndpoint:
        self._thread.start()
        # TLS is started in _serve, not by the server: asyncio reports a failed server-side
        # handshake nowhere (an SSLError is an OSError, which it only logs in debug mode).
        self._server = asyncio.run_coroutine_threadsafe(asyncio.start_server(
            self._serve, "127.0.0.1", self.port), self._loop).result(10)
        self._loop.set_exception_handler(self._on_loop_error)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _on_loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        # A failed handshake (a plaintext client, an unknown CA) is reported here, not raised.
        if isinstance(context.get("exception"), (ssl.SSLError, ConnectionError, OSError)):
            self.handshakes_failed += 1
        else:
            loop.default_exception_handler(context)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await writer.start_tls(self.context, ssl_handshake_timeout=5.0)
        except (OSError, TimeoutError):  # ssl.SSLError is an OSError
            self.handshakes_failed += 1  # a plaintext client, an unknown CA, no client certificate
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError, ssl.SSLError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError, RuntimeError):
            pass
