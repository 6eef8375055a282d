"""What the sender thread's coroutines wait for: a close request, and a change of the sender's state.

Both replace polling: a coroutine that needs a condition waits until whoever changes the state
that decides it says so.

>>> import asyncio
>>> changed, state = StateChanged(), {"ready": False}
>>> async def scenario():
...     waiter = asyncio.ensure_future(changed.wait_for(lambda: state["ready"]))
...     await asyncio.sleep(0)
...     state["ready"] = True
...     changed.notify()
...     await waiter
...     return waiter.done()
>>> asyncio.run(scenario())
True
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable


class CloseRequest:
    """``close()`` called on the training thread, as the sender thread's loop sees it.

    ``requested`` is a plain flag, set at once (``submit()`` reads it); :meth:`announce` sets
    ``event`` on the loop for the coroutines waiting on it. Delivery may go on until ``deadline``
    (``time.monotonic()``).
    """

    def __init__(self) -> None:
        self.requested = False
        self.deadline = math.inf
        self.event = asyncio.Event()

    def request(self, timeout_s: float) -> None:
        """On the closing thread: from now on, delivery gets ``timeout_s`` seconds."""
        self.deadline = time.monotonic() + timeout_s
        self.requested = True

    def announce(self) -> None:
        """On the loop: wake the coroutines that wait for the request."""
        self.event.set()

    def remaining_s(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    async def wait(self, timeout_s: float) -> None:
        """Return when close is announced, or after ``timeout_s`` seconds."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout_s)

    async def finishes_first(self, task: asyncio.Future) -> bool:
        """Wait for ``task`` or for close, whichever comes first; whether ``task`` is done."""
        closing = asyncio.ensure_future(self.event.wait())
        try:
            await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
        return task.done()


class StateChanged:
    """Wakes the coroutines waiting for a condition whenever the state deciding it may have changed.

    Every change of that state happens on the loop and is followed by :meth:`notify` (from another
    thread: ``loop.call_soon_threadsafe(changed.notify)``); a waiter checks its condition again at
    each notification.
    """

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():  # a waiter cancelled since it began waiting
                waiter.set_result(None)

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` is true."""
        while not condition():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
