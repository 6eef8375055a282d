"""Long-running commands end cleanly on SIGINT and SIGTERM: the work in hand is finished first."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

from trainsentry.consumers.commands.errors import EXIT_OK


def run_until_signal(body: Callable[[asyncio.Event], Awaitable[object]]) -> int:
    """Run ``body(stop)``; SIGINT and SIGTERM set ``stop`` so it can finish cleanly, then exit 0."""
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await body(stop)
    asyncio.run(runner())
    return EXIT_OK
