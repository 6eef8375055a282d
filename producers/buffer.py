"""A bounded, thread-safe FIFO measured in bytes, which drops instead of blocking.

The training thread puts; the sender thread takes. Putting never waits: when the events would not
fit, the policy decides whether the oldest waiting events or the new one are given up, and the
loss is counted.

>>> buf = EventBuffer(max_bytes=100, policy=DropPolicy.OLDEST)
>>> [buf.put(name, 40) for name in "abc"]
[True, True, True]
>>> buf.take(10), buf.dropped
(['b', 'c'], 1)
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from .settings import DropPolicy


class EventBuffer:
    """Items waiting for the sender, at most ``max_bytes`` of them by their declared size."""

    def __init__(self, max_bytes: int, policy: DropPolicy = DropPolicy.OLDEST) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.policy = DropPolicy(policy)
        self.dropped = 0
        self._items: deque[tuple[Any, int]] = deque()
        self._bytes = 0
        self._closed = False
        self._lock = threading.Lock()

    def put(self, item: Any, size: int) -> bool:
        """Queue ``item``; ``False`` if it was dropped (older items dropped to make room do not count)
        or the buffer is closed (not counted: nothing was accepted, nobody will take it)."""
        with self._lock:
            if self._closed:
                return False
            if self._bytes + size <= self.max_bytes:
                self._items.append((item, size))
                self._bytes += size
                return True
            if size > self.max_bytes or self.policy is DropPolicy.NEWEST:
                self.dropped += 1
                return False
            while self._bytes + size > self.max_bytes:
                _, old_size = self._items.popleft()
                self._bytes -= old_size
                self.dropped += 1
            self._items.append((item, size))
            self._bytes += size
            return True

    def take(self, max_items: int, max_bytes: int | None = None) -> list[Any]:
        """Remove and return up to ``max_items`` items, oldest first, and (after the first one) no
        more than ``max_bytes`` of them."""
        taken: list[Any] = []
        total = 0
        with self._lock:
            items = self._items
            while items and len(taken) < max_items:
                size = items[0][1]
                if taken and max_bytes is not None and total + size > max_bytes:
                    break
                taken.append(items.popleft()[0])
                total += size
            self._bytes -= total
        return taken

    def close(self) -> int:
        """Empty the buffer and refuse every later :meth:`put` (at shutdown, when what waits can no
        longer be sent); return how many items it held. They are the caller's to count:
        ``dropped`` counts only the policy's drops.

        Under the same lock as :meth:`put`, so an item is either in the returned count or refused:
        never accepted after the count was taken. Safe to call twice (the second returns 0).
        """
        with self._lock:
            self._closed = True
            count = len(self._items)
            self._items.clear()
            self._bytes = 0
        return count

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)
