"""A small HTTP/1.1 server on asyncio streams: GET requests, whole responses and event streams.

HTTP parsing is h11's (a pure-Python HTTP/1.1 state machine, no I/O of its own): a malformed
request gets h11's 4xx and one line saying why. Everything the dashboard serves is a GET; any other
method is a 405, a request with a body a 413. A handler raises :class:`HttpError` for bad input and
never shows a traceback: an unexpected exception becomes a 500 with one line, logged here.

Server-sent events: a handler returns an :class:`EventStream`, whose messages are written as they
come until the client goes away or the server stops (chunked transfer encoding).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

import h11

log = logging.getLogger("trainsentry.ui")

MAX_REQUEST_HEAD = 16 * 1024  # bytes of request line and headers
READ_CHUNK = 64 * 1024
SERVER_NAME = b"trainsentry"


class HttpError(Exception):
    """A 4xx (or 5xx) answer with a one-line reason for the person or program that asked."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Request:
    method: str
    path: str                  # percent-decoded
    query: dict[str, str]      # each parameter at most once (checked by :func:`parse_target`)


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class EventStream:
    """A ``text/event-stream`` response: each item of ``messages`` is one encoded message."""

    messages: AsyncIterator[bytes]


Handler = Callable[[Request], Awaitable["Response | EventStream"]]


def parse_target(target: bytes) -> tuple[str, dict[str, str]]:
    """Path and query of a request target; :class:`HttpError` 400 naming what is malformed.

    >>> parse_target(b"/api/trial?trial=run%201")
    ('/api/trial', {'trial': 'run 1'})
    >>> try:
    ...     parse_target(b"/api/trial?trial=a&trial=b")
    ... except HttpError as exc:
    ...     print(exc.status, exc.message)
    400 query parameter 'trial' given more than once
    """
    try:
        text = target.decode("ascii")
    except UnicodeDecodeError:
        raise HttpError(400, "request target: not ASCII (percent-encode it)") from None
    raw_path, _, raw_query = text.partition("?")
    try:
        path = unquote(raw_path, errors="strict")
        pairs = parse_qsl(raw_query, keep_blank_values=True, strict_parsing=bool(raw_query),
                          errors="strict") if raw_query else []
    except (UnicodeDecodeError, ValueError) as exc:
        raise HttpError(400, f"query: malformed ({exc})") from None
    query: dict[str, str] = {}
    for key, value in pairs:
        if key in query:
            raise HttpError(400, f"query parameter {key!r} given more than once")
        query[key] = value
    return path, query


class HttpServer:
    """Serves ``handler`` on ``host:port`` until :meth:`close`."""

    def __init__(self, handler: Handler, host: str, port: int) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve_connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):  # event streams never end by themselves
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_HEAD)
        try:
            while True:
                try:
                    request = await self._read_request(conn, reader)
                except h11.RemoteProtocolError as exc:
                    if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                        status = exc.error_status_hint if 400 <= exc.error_status_hint < 500 else 400
                        await _send(conn, writer, Response(status, f"bad request: {exc}\n".encode()))
                    return
                if request is None:
                    return
                streaming = await self._answer(conn, reader, writer, request)
                if streaming or conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                try:
                    conn.start_next_cycle()
                except h11.LocalProtocolError:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Request | None:
        """The next request, its body drained; ``None`` when the client closed the connection."""
        request: h11.Request | None = None
        body = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(READ_CHUNK)
                conn.receive_data(data)  # b"" tells h11 the peer closed
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += len(event.data)
                if body > MAX_REQUEST_HEAD:
                    raise h11.RemoteProtocolError("request body too large", error_status_hint=413)
            elif isinstance(event, h11.EndOfMessage):
                return request

    async def _answer(self, conn: h11.Connection, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter, raw: h11.Request) -> bool:
        """Answer one request; ``True`` if it was an event stream (the connection is then done)."""
        method = raw.method.decode("ascii", "replace")
        try:
            if method != "GET":
                raise HttpError(405, f"method {method}: only GET is served")
            path, query = parse_target(raw.target)
            result = await self.handler(Request(method, path, query))
        except HttpError as exc:
            result = Response(exc.status, (exc.message + "\n").encode("utf-8"))
        except Exception:
            log.exception("dashboard: error answering %r", raw.target)
            result = Response(500, b"internal error; the server log says more\n")
        if isinstance(result, EventStream):
            await _stream(conn, reader, writer, result)
            return True
        await _send(conn, writer, result)
        return False


async def _send(conn: h11.Connection, writer: asyncio.StreamWriter, response: Response) -> None:
    headers = [("content-type", response.content_type), ("content-length", str(len(response.body))),
               ("server", SERVER_NAME.decode()), ("x-content-type-options", "nosniff"),
               *response.headers]
    if response.status == 405:
        headers.append(("allow", "GET"))
    writer.write(conn.send(h11.Response(status_code=response.status, headers=headers)))
    writer.write(conn.send(h11.Data(data=response.body)))
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()


async def _stream(conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  stream: EventStream) -> None:
    """Write the stream's messages until it ends, the client closes, or the task is cancelled."""
    headers = [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache"),
               ("server", SERVER_NAME.decode()), ("x-content-type-options", "nosniff")]
    writer.write(conn.send(h11.Response(status_code=200, headers=headers)))
    await writer.drain()
    closed = asyncio.ensure_future(reader.read(1))  # the client sends nothing more: EOF = gone
    try:
        async with contextlib.aclosing(stream.messages) as messages:
            async for message in messages:
                if closed.done():
                    return
                writer.write(conn.send(h11.Data(data=message)))
                await writer.drain()
    finally:
        closed.cancel()
