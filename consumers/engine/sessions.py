"""Writer sessions: a resumed run restarts its series instead of being taken for late steps.

A training job restarted from a checkpoint writes its steps again from the checkpoint's step, from
a new writer process: a new ``session`` (docs/rules.md, "Resumed runs"). Per (trial, worker) and
kind of input, the sessions are numbered in the order they are first seen (their *ordinal*):
``tensor`` and ``scalar`` events are one kind (the hook's or the publisher's process), ``log``
events and the metric series made from them another (``trainsentry tap``'s process), since both
write for one worker at the same time. Events without a session are the session ``None``.

- A series belongs to the session of its events. An event of a newer session restarts it (its
  newest step and its rules' states start over from that event); an event of an older one is late.
  A series' ordinal is kept only once it is not 0, so a run that never restarts keeps nothing more.
- A rule whose state spans several series of a worker (:attr:`Rule.state_spans_series`) keeps the
  ordinal of each state: a value of a newer session starts the state afresh, one of an older
  session is not shown to it.
- A new session of a worker that had one before starts ``stop_at_first`` afresh: the rules it
  stopped in the trial run again.

>>> from trainsentry.consumers.state import MemoryStore
>>> state = MemoryStore().trial("run-1")
>>> sessions = Sessions()
>>> [sessions.ordinal(state, "0", s, VALUES) for s in ("a", "a", "b", "a")]
[(0, False), (0, False), (1, True), (0, False)]
>>> sessions.turn(state, 3, ("0", "loss"), 1), sessions.turn(state, 3, ("0", "loss"), 0)
('newer', 'older')
"""

from __future__ import annotations

from collections.abc import Hashable

from trainsentry.consumers.state import TrialState

from .trial import SERIES_SESSION, SESSIONS, STATE_SESSION

VALUES = "values"  # tensor and scalar events: their sessions are keyed by the worker alone
LOGS = "logs"      # log events and their metric series: keyed by (LOGS, worker)

SAME, NEWER, OLDER = "same", "newer", "older"


class Sessions:
    """Numbers the sessions of each worker and says when a series or a state starts over."""

    def ordinal(self, state: TrialState, worker: str, session: str | None,
                kind: str) -> tuple[int, bool]:
        """The ordinal of ``session`` among the worker's sessions of ``kind``, and whether it is a
        new session after an earlier one (a resumed writer)."""
        table = state.table(SESSIONS)
        key: Hashable = worker if kind == VALUES else (LOGS, worker)
        seen = table.entries.get(key)
        if seen is None:
            table.put(key, (session,))
            return 0, False
        if seen[-1] == session:
            return len(seen) - 1, False
        if session in seen:
            return seen.index(session), False
        table.put(key, seen + (session,))
        return len(seen), True

    @staticmethod
    def series_ordinal(state: TrialState, series: Hashable) -> int:
        """The ordinal of the session ``series`` is in (0 unless it restarted)."""
        table = state.tables.get(SERIES_SESSION)
        return 0 if table is None else table.entries.get(series, 0)

    @staticmethod
    def set_series_ordinal(state: TrialState, series: Hashable, ordinal: int) -> None:
        state.table(SERIES_SESSION, fixed=True).put(series, ordinal)

    @staticmethod
    def turn(state: TrialState, index: int, key: Hashable, ordinal: int) -> str:
        """For rule ``index``'s state at ``key`` and a value of session ``ordinal``: ``"same"``,
        ``"newer"`` (the state starts afresh, now in that session) or ``"older"`` (not shown)."""
        table = state.table(STATE_SESSION, fixed=True)
        slot = (index, key)
        current = table.entries.get(slot, 0)
        if ordinal == current:
            return SAME
        if ordinal < current:
            return OLDER
        table.put(slot, ordinal)
        return NEWER

    @staticmethod
    def restart_stopped(state: TrialState) -> None:
        """A resumed writer: the rules ``stop_at_first`` stopped in the trial run again."""
        book = state.head
        if book.stopped:
            book.stopped = 0
            state.touch_head()
