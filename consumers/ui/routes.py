"""What the dashboard answers, path by path; bad input is a 4xx with one line naming it.

==========================  =======================================================================
``/``                       the runs page
``/trial?trial=ID``         the page of one trial (404 for a trial not seen)
``/api/runs``               the runs table as JSON
``/api/trial?trial=ID``     one trial: summary, every curve with its points, its kept alerts
``/api/events[?trial=ID]``  server-sent events: the runs table, or one trial's new points and alerts
``/static/NAME``            the page's scripts and styles, all served from the package
==========================  =======================================================================
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainsentry.consumers.runs import RunCollection
from trainsentry.consumers.runs.layer_stats import STAT_LABELS

from .http_server import EventStream, HttpError, Request, Response
from .live_feed import LiveFeed

STATIC_DIR = Path(__file__).parent / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
MAX_TRIAL_CHARS = 256


def _static_files(root: Path) -> dict[str, Path]:
    """Every servable file under ``root`` by its URL name: a fixed list, so no path escapes it."""
    return {path.relative_to(root).as_posix(): path for path in sorted(root.rglob("*"))
            if path.is_file() and path.suffix in CONTENT_TYPES}


class DashboardRoutes:
    """The request handler of the dashboard's :class:`~.http_server.HttpServer`."""

    def __init__(self, collection: RunCollection, feed: LiveFeed, *, source: str,
                 clock: Callable[[], float] = time.time, static_dir: Path = STATIC_DIR) -> None:
        self.collection = collection
        self.feed = feed
        self.source = source  # shown on the pages: which cluster and topics
        self.clock = clock
        self.static = _static_files(static_dir)
        self._routes = {
            "/": (self._runs_page, ()),
            "/trial": (self._trial_page, ("trial",)),
            "/api/runs": (self._runs, ()),
            "/api/trial": (self._trial, ("trial",)),
            "/api/events": (self._events, ("trial",)),
        }

    async def __call__(self, request: Request) -> Response | EventStream:
        if request.path.startswith("/static/"):
            _allow(request, ())
            return self._static_file(request.path[len("/static/"):])
        route = self._routes.get(request.path)
        if route is None:
            raise HttpError(404, f"no page {request.path!r}; the runs are at /")
        handler, allowed = route
        _allow(request, allowed)
        return handler(request)

    # --- pages -------------------------------------------------------------------------------

    def _runs_page(self, request: Request) -> Response:
        return self._static_file("runs.html")

    def _trial_page(self, request: Request) -> Response:
        self._record(request)  # 400 / 404 before a page that could only say "not found"
        return self._static_file("trial.html")

    def _static_file(self, name: str) -> Response:
        path = self.static.get(name)
        if path is None:
            raise HttpError(404, f"no file {name!r} under /static/")
        return Response(200, path.read_bytes(), CONTENT_TYPES[path.suffix],
                        [("cache-control", "no-cache")])

    # --- data --------------------------------------------------------------------------------

    def _runs(self, request: Request) -> Response:
        now = self.clock()
        return _json({"now": now, "source": self.source, "runs": self.collection.summaries(now),
                      "evicted": self.collection.evicted,
                      "stalled_after": self.collection.stalled_after,
                      "limits": self.collection.limits.__dict__})

    def _trial(self, request: Request) -> Response:
        record = self._record(request)
        now = self.clock()
        return _json({"now": now, "source": self.source, "summary": self.collection.summary(record, now),
                      "stat_labels": STAT_LABELS, **record.snapshot()})

    def _events(self, request: Request) -> EventStream:
        trial = None
        if "trial" in request.query:
            trial = self._record(request).trial
        return EventStream(self.feed.messages(trial))

    def _record(self, request: Request):
        trial = request.query.get("trial")
        if trial is None:
            raise HttpError(400, "query parameter 'trial' is required, e.g. ?trial=run-1")
        if not 1 <= len(trial) <= MAX_TRIAL_CHARS:
            raise HttpError(400, f"query parameter 'trial': expected 1..{MAX_TRIAL_CHARS} characters, "
                                 f"got {len(trial)}")
        record = self.collection.trials.get(trial)
        if record is None:
            raise HttpError(404, f"trial {trial!r} has not been seen (yet): the runs are at /")
        return record


def _allow(request: Request, allowed: tuple[str, ...]) -> None:
    for key in request.query:
        if key not in allowed:
            expected = ", ".join(allowed) if allowed else "none"
            raise HttpError(400, f"unknown query parameter {key!r} for {request.path}; expected: {expected}")


def _json(payload: dict[str, Any]) -> Response:
    body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return Response(200, body, "application/json", [("cache-control", "no-store")])
