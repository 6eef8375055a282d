"""Real receivers on loopback for notify's tests: an HTTP server taking JSON webhooks, an SMTP
server taking mail. Both run in threads of the test process; the webhook can be taken down and
brought back on the same port, or told to refuse requests with a 500."""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from trainsentry.consumers.broker import free_port


@dataclass
class Webhook:
    path: str
    payload: dict[str, Any]


class WebhookReceiver:
    """``json://127.0.0.1:PORT/PATH`` posts land in :attr:`received`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Webhook] = []
        self.refused = 0
        self.refuse_next = 0  # answer this many requests with 500 before taking any
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def url(self, path: str = "hooks/s3cr3t-token-path") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server convention
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    if receiver.refuse_next > 0:
                        receiver.refuse_next -= 1
                        receiver.refused += 1
                        status = 500
                    else:
                        receiver.received.append(Webhook(self.path, json.loads(body)))
                        status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Down: the port refuses connections until :meth:`start` again."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()
            self._server = None

    def messages(self) -> list[str]:
        with self._lock:
            return [hook.payload["message"] for hook in self.received]


class _Inbox:
    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        mail = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.mails.append(mail)
        return "250 Message accepted for delivery"


class SmtpReceiver:
    """An SMTP server (aiosmtpd) on loopback, no TLS, no authentication."""

    def __init__(self) -> None:
        self.port = free_port()
        self._inbox = _Inbox()
        self._controller = Controller(self._inbox, hostname="127.0.0.1", port=self.port)

    def url(self) -> str:
        return (f"mailto://example.com?smtp=127.0.0.1&port={self.port}&mode=insecure"
                f"&from=trainsentry@example.com&to=ml-team@example.com")

    def start(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def mails(self) -> list[EmailMessage]:
        with self._inbox.lock:
            return list(self._inbox.mails)


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain", "html"))
    return part.get_content()


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll until ``condition`` holds; a deadline that no healthy run reaches turns a hang into a failure."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout}s")
        time.sleep(0.05)
