"""Whether the sidecar is alive and ready: the answers of ``/healthz`` and ``/readyz``.

- **live**: the event loop has turned within ``stalled_after_s``. A task on the loop marks a beat
  every :data:`BEAT_SECONDS`; a batch that blocks the loop, or a deadlock, stops the beats. (Before
  the first beat, the process counts as live from the moment this object was made.)
- **ready**: live, and the consumer group's source has nothing missing: the group is joined, the
  assigned partitions are rebuilt, and a fetch was answered within ``silent_after_s``. A member
  the group dropped (its session expired), a rebalance in progress, or a broker that went away
  turns it not ready, with the reason.

The loop writes, the HTTP server's thread reads: each beat replaces one immutable snapshot, so a
probe never looks into the consumer's state while the loop changes it.

>>> clock = iter([0.0, 1.0, 1.5, 45.0]).__next__
>>> health = Health(ProbeLimits(stalled_after_s=30), clock=clock)
>>> health.beat(None)
>>> health.liveness()
Answer(ok=True, reason='the event loop turned 0s ago')
>>> health.readiness()
Answer(ok=False, reason='the event loop has not turned for 44s')
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

BEAT_SECONDS = 1.0
STARTING = "starting"


@dataclass(frozen=True)
class ProbeLimits:
    """How long without a turn of the loop is a stall, and without an answered fetch a lost broker."""

    stalled_after_s: float = 30.0
    silent_after_s: float = 30.0


@dataclass(frozen=True)
class Answer:
    ok: bool
    reason: str


@dataclass(frozen=True)
class _Beat:
    at: float
    not_ready: str | None


class Health:
    """The sidecar's liveness and readiness; :meth:`keep_beating` runs on the sidecar's loop."""

    def __init__(self, limits: ProbeLimits = ProbeLimits(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._last = _Beat(clock(), STARTING)

    def beat(self, not_ready: str | None) -> None:
        """The loop turned; ``not_ready`` is what keeps the sidecar from being ready (``None``: nothing)."""
        self._last = _Beat(self._clock(), not_ready)

    def liveness(self) -> Answer:
        since = self._clock() - self._last.at
        if since > self.limits.stalled_after_s:
            return Answer(False, f"the event loop has not turned for {since:.0f}s")
        return Answer(True, f"the event loop turned {since:.0f}s ago")

    def readiness(self) -> Answer:
        live = self.liveness()
        if not live.ok:
            return live
        not_ready = self._last.not_ready
        return Answer(False, not_ready) if not_ready else Answer(True, "in the group, partitions rebuilt")

    async def keep_beating(self, not_ready: Callable[[float], str | None]) -> None:
        """Beat every :data:`BEAT_SECONDS` with ``not_ready(silent_after_s)``, until cancelled."""
        while True:
            try:
                missing = not_ready(self.limits.silent_after_s)
            except Exception as exc:  # a probe must not be what stops the beats
                missing = f"readiness unknown ({type(exc).__name__}: {exc})"
            self.beat(missing)
            await asyncio.sleep(BEAT_SECONDS)
