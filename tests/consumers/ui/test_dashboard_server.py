"""The dashboard's server over real HTTP on loopback, fed without Kafka: pages, data, live events,
and a clear 4xx for every kind of bad input (never a traceback)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import pytest

from trainsentry.consumers.runs import RunCollection
from trainsentry.consumers.ui.http_server import HttpServer
from trainsentry.consumers.ui.live_feed import LiveFeed
from trainsentry.consumers.ui.routes import STATIC_DIR, DashboardRoutes
from trainsentry.protocol import AlertEvent, ScalarEvent


class Dashboard:
    def __init__(self, collection: RunCollection, server: HttpServer) -> None:
        self.collection = collection
        self.server = server

    async def request(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send raw request bytes; the status, headers and body of the answer."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
        writer.write(raw)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
        return int(lines[0].split()[1]), headers, body

    async def get(self, target: str) -> tuple[int, dict[str, str], bytes]:
        return await self.request(f"GET {target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())


@pytest.fixture
async def dashboard() -> AsyncIterator[Dashboard]:
    collection = RunCollection()
    collection.observe(ScalarEvent("run 1/ü", 100.0, "TRAIN", 0, "loss", 1.0))
    feed = LiveFeed(collection)
    server = HttpServer(DashboardRoutes(collection, feed, source="test"), "127.0.0.1", 0)
    await server.start()
    stop = asyncio.Event()
    ticking = asyncio.create_task(feed.run(stop))
    try:
        yield Dashboard(collection, server)
    finally:
        stop.set()
        await ticking
        await server.close()


async def test_pages_and_every_script_and_style_they_load_are_served_by_the_package(dashboard) -> None:
    for page in ("/", "/trial?trial=run%201%2F%C3%BC"):
        status, headers, body = await dashboard.get(page)
        assert status == 200 and headers["content-type"].startswith("text/html")
        assets = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', body.decode())
        assert assets and all(a.startswith("/static/") for a in assets), assets
        for asset in assets:
            status, _, content = await dashboard.get(asset)
            assert status == 200 and content
    # Offline: nothing the pages load names another host.
    for path in STATIC_DIR.rglob("*"):
        if path.suffix in (".html", ".js", ".css") and "vendor" not in path.parts:
            assert not re.search(r"(src|href)\s*=\s*[\"']https?:", path.read_text()), path


async def test_the_data_of_runs_and_of_a_trial(dashboard) -> None:
    status, _, body = await dashboard.get("/api/runs")
    runs = json.loads(body)["runs"]
    assert status == 200 and [r["trial"] for r in runs] == ["run 1/ü"]
    status, _, body = await dashboard.get("/api/trial?trial=run+1%2F%C3%BC")
    trial = json.loads(body)
    assert status == 200 and trial["series"][0]["name"] == "loss" and trial["series"][0]["values"] == [1.0]


@pytest.mark.parametrize(("target", "status", "says"), [
    ("/trial?trial=nobody", 404, "trial 'nobody' has not been seen"),
    ("/api/trial?trial=nobody", 404, "trial 'nobody' has not been seen"),
    ("/api/events?trial=nobody", 404, "trial 'nobody' has not been seen"),
    ("/api/trial", 400, "query parameter 'trial' is required"),
    ("/api/trial?trial=", 400, "expected 1..256 characters"),
    ("/api/trial?trial=a&trial=b", 400, "'trial' given more than once"),
    ("/api/runs?sort=age", 400, "unknown query parameter 'sort'"),
    ("/api/trial?trial=%FF", 400, "query: malformed"),
    ("/api/trial?trial=a&&=b", 400, "query: malformed"),
    ("/static/../routes.py", 404, "no file"),
    ("/static/vendor/uplot/VERSION.md", 404, "no file"),
    ("/admin", 404, "no page '/admin'"),
])
async def test_bad_input_is_a_clear_4xx(dashboard, target: str, status: int, says: str) -> None:
    got, headers, body = await dashboard.get(target)
    text = body.decode()
    assert got == status and says in text, (got, text)
    assert headers["content-type"].startswith("text/plain") and "Traceback" not in text
    assert text.count("\n") == 1  # one line


async def test_other_methods_and_malformed_requests_are_refused(dashboard) -> None:
    status, headers, body = await dashboard.request(b"POST /api/runs HTTP/1.1\r\nhost: x\r\n"
                                                    b"content-length: 2\r\nconnection: close\r\n\r\n{}")
    assert status == 405 and headers["allow"] == "GET" and b"only GET" in body
    status, _, body = await dashboard.request(b"GARBAGE\r\n\r\n")
    assert status == 400 and b"bad request" in body and b"Traceback" not in body
    status, _, _ = await dashboard.request(b"GET / HTTP/1.1\r\n" + b"x-long: " + b"a" * 20_000 + b"\r\n\r\n")
    assert 400 <= status < 500


async def test_live_events_bring_new_points_and_alerts(dashboard) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", dashboard.server.port)
    writer.write(b"GET /api/events?trial=run%201%2F%C3%BC HTTP/1.1\r\nhost: x\r\n\r\n")
    await writer.drain()

    async def next_message(kind: str) -> dict:
        while True:
            line = await reader.readline()
            if line.startswith(f"event: {kind}".encode()):
                data = await reader.readline()
                payload = data.decode().partition("data: ")[2]
                # Chunked transfer encoding may split a line; the JSON object is on one line here.
                return json.loads(payload)

    hello = await asyncio.wait_for(next_message("hello"), 30)
    assert hello["trial"] == "run 1/ü"
    dashboard.collection.observe(ScalarEvent("run 1/ü", 101.0, "TRAIN", 1, "loss", 0.5))
    dashboard.collection.observe(AlertEvent(
        trial="run 1/ü", ts=101.0, id="a1", rule="LossNotDecreasing", rule_type="LossNotDecreasing",
        mode="TRAIN", step=1, tensors=("loss",), message="loss did not decrease",
        details={"threshold": 0.4}, event_ts=101.0))

    async def with_alert() -> dict:
        while True:
            message = await next_message("trial")
            if message.get("alerts"):
                return message

    message = await asyncio.wait_for(with_alert(), 30)
    assert [0, 1, 0.5] in message["points"]
    assert message["alerts"][0]["rule"] == "LossNotDecreasing" and message["alerts"][0]["severity"] == "warning"
    assert message["summary"]["alerts"]["warning"] == 1
    writer.close()
