"""The sidecar's HTTP endpoint: ``/metrics`` (Prometheus), ``/healthz`` (live), ``/readyz`` (ready).

One small WSGI application on a thread of its own, so the probes answer even while the event loop
is blocked: that is what lets ``/healthz`` say the loop is stuck. A probe answers ``200`` with
``ok: <why>`` or ``503`` with the reason, one line of text (see :mod:`trainsentry.consumers.health`).
Anything else is the Prometheus exposition of the registry.

It listens on loopback unless told otherwise (``--metrics-bind``): a container that Prometheus
or the kubelet must reach passes ``0.0.0.0`` explicitly.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from trainsentry.consumers.health import Answer, Health
from trainsentry.consumers.settings import DEFAULT_METRICS_BIND

PROBES = {"/healthz": Health.liveness, "/readyz": Health.readiness}


def status_app(registry: CollectorRegistry, health: Health) -> Callable[..., Iterable[bytes]]:
    """The WSGI application: the probes, and the metrics for every other path."""
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        probe = PROBES.get(environ.get("PATH_INFO", "").rstrip("/") or "/")
        if probe is None:
            return metrics(environ, start_response)
        answer: Answer = probe(health)
        body = f"{'ok' if answer.ok else 'not ok'}: {answer.reason}\n".encode()
        start_response("200 OK" if answer.ok else "503 Service Unavailable",
                       [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                        ("Cache-Control", "no-store")])
        return [body]

    return app


class StatusServer:
    """The endpoint, serving from a daemon thread until :meth:`close`."""

    def __init__(self, registry: CollectorRegistry, health: Health, port: int,
                 bind: str = DEFAULT_METRICS_BIND) -> None:
        server_class = _Server6 if ":" in bind else _Server
        self._httpd = make_server(bind, port, status_app(registry, health), server_class=server_class,
                                  handler_class=_QuietHandler)
        self.port = self._httpd.server_port
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="trainsentry-status",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never holds the exit


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # a probe every few seconds is no news
        pass
