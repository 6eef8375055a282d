"""``trainsentry ui``: the live dashboard, assembled: topic reader -> collection -> server and feed.

One asyncio loop runs three tasks: :func:`~.topic_feed.follow_topics` fills the
:class:`~trainsentry.consumers.runs.RunCollection`, :class:`~.live_feed.LiveFeed` pushes what it
gained to the open pages, and :class:`~.http_server.HttpServer` answers them. Loopback only by
default: the dashboard has no login.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from trainsentry.consumers.runs import Limits, RunCollection
from trainsentry.consumers.runs.run_collection import DEFAULT_STALLED_AFTER
from trainsentry.consumers.settings import KafkaSettings

from .http_server import HttpServer
from .live_feed import LiveFeed
from .routes import DashboardRoutes
from .topic_feed import FeedCounters, follow_topics

log = logging.getLogger("trainsentry.ui")

DEFAULT_BIND = "127.0.0.1"
DEFAULT_PORT = 8050


@dataclass(frozen=True)
class DashboardOptions:
    bind: str = DEFAULT_BIND
    port: int = DEFAULT_PORT                     # 0: any free port
    stalled_after: float = DEFAULT_STALLED_AFTER
    objective_type: str = "Minimize"             # the objective's direction, for "best"
    limits: Limits = field(default_factory=Limits)


async def run_dashboard(settings: KafkaSettings, options: DashboardOptions, stop: asyncio.Event,
                        on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the dashboard until ``stop`` is set; ``on_ready(url)`` once it answers.

    A failure of the topic reader (the cluster cannot be reached) stops the dashboard and is raised.
    """
    collection = RunCollection(options.limits, options.stalled_after, options.objective_type)
    feed = LiveFeed(collection)
    source = f"{settings.bootstrap_servers}, topics {settings.topics.prefix}.*"
    server = HttpServer(DashboardRoutes(collection, feed, source=source), options.bind, options.port)
    await server.start()
    counters = FeedCounters()
    tasks = [asyncio.create_task(feed.run(stop), name="ui-feed"),
             asyncio.create_task(follow_topics(settings, collection, stop, counters), name="ui-topics")]
    if on_ready is not None:
        on_ready(server.url)
    try:
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not stopped and task.exception() is not None:
                raise task.exception()
    finally:
        stop.set()
        await server.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        if counters.invalid:
            log.warning("dashboard: skipped %d invalid records; the last: %s",
                        counters.invalid, counters.last_invalid)
