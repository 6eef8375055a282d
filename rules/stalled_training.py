"""StalledTrainingRule: a worker has sent nothing for longer than a threshold."""

from __future__ import annotations

from typing import Any

from .base import Finding, Param
from .clocked import ClockedRule
from .params import number, optional, parse_bool


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


class _Worker:
    """What the rule knows of one worker: when it was last heard of, its last step and session."""

    __slots__ = ("last_at", "last_ts", "step", "session", "sessions", "ended", "fired")

    def __init__(self) -> None:
        self.last_at = float("-inf")  # clock time of its newest event (ts in a replay, arrival live)
        self.last_ts = float("-inf")  # the writer's ts of that event
        self.step = -1                # global step of its newest tensor or scalar; -1: none yet
        self.session: str | None = None          # session of that tensor or scalar (else of a log)
        self.sessions: tuple[str | None, ...] = ()  # every session heard, in order
        self.ended = False            # it sent its end marker (in a session heard since)
        self.fired = False            # the current stall has alerted


class StalledTrainingRule(ClockedRule[_Worker]):
    """Fires once when a worker has sent no event for more than ``threshold`` seconds.

    docs/rules.md, "StalledTrainingRule". Per (trial, worker)::

        gap = clock - time of the worker's newest tensor, scalar or log event
        fires (once per stall)  iff  gap > threshold

    The clock is the engine's, moved by its source: the live sidecar's clock, at least once a
    second; in a replay, the newest event ``ts`` read so far. A worker's event time is its ``ts`` in
    a replay and its arrival time live. A new event of the worker re-arms the rule; a worker that
    sent its end marker (a ``log`` event with ``final``) is never stalled, unless a new session of
    it (a resumed run) is heard afterwards. The alert's mode is GLOBAL, its step the global step of
    the worker's newest tensor or scalar (0 when it wrote only log lines), its ``ts`` the writer's
    ``ts`` of the newest event; its details give the last event time, the clock, the gap and
    ``stop_training``, the value of ``stop_training_on_fire``: true asks the training side to stop
    (an ``AlertFollower`` honours it), false asks it not to.

    Decisions where the SageMaker documentation is silent: in a replay the clock moves before
    the event that moves it is heard, so a worker whose own next event comes more than
    ``threshold`` after its previous one is reported stalled, as the live sidecar would have;
    a second stall at the same step (the worker wrote only log lines in between) is the same
    verdict and does not alert again; ``training_job_name_prefix`` is accepted and unused (a
    stream names its trial).

    Examples
    --------
    >>> rule = StalledTrainingRule(threshold=60)
    >>> worker = rule.new_state()
    >>> rule.heard(worker, 1000.0, 42, 1000.0, "s1", False)
    >>> rule.due(worker)
    1060.0
    >>> rule.on_clock(worker, "run-1", "0", 1060.0) is None  # not more than the threshold
    True
    >>> print(rule.on_clock(worker, "run-1", "0", 1061.5).message)
    worker 0 of trial 'run-1' sent nothing for 61.5 s (threshold 60 s); its last step is 42
    >>> rule.due(worker) is None  # fired once; a new event re-arms it
    True
    """

    rule_type = "StalledTrainingRule"
    params = {
        "threshold": Param(number(above=0), 1800.0,
                           "seconds without an event after which a worker is stalled"),
        "stop_training_on_fire": Param(parse_bool, False, "the alert asks the training side to stop"),
        "training_job_name_prefix": Param(optional(_text), None,
                                          "accepted for compatibility with SageMaker; unused"),
    }

    threshold: float
    stop_training_on_fire: bool
    training_job_name_prefix: str | None

    def new_state(self) -> _Worker:
        return _Worker()

    def heard(self, state: _Worker, at: float, step: int | None, ts: float, session: str | None,
              final: bool) -> None:
        if session not in state.sessions:
            if state.sessions:  # a resumed writer: a worker that had ended writes again
                state.ended = False
            state.sessions += (session,)
        if at > state.last_at:
            state.last_at = at
        if ts > state.last_ts:
            state.last_ts = ts
        if step is not None:
            state.step, state.session = step, session
        elif state.step < 0:
            state.session = session
        if final:
            state.ended = True
        state.fired = False

    def due(self, state: _Worker) -> float | None:
        if state.ended or state.fired:
            return None
        return state.last_at + self.threshold

    def on_clock(self, state: _Worker, trial: str, worker: str, now: float) -> Finding | None:
        if state.ended or state.fired or not now > state.last_at + self.threshold:
            return None
        state.fired = True
        gap = now - state.last_at
        step = max(state.step, 0)
        details: dict[str, Any] = {"last_event_time": state.last_at, "clock": now, "gap": gap,
                                   "threshold": self.threshold, "last_step": state.step,
                                   "stop_training": self.stop_training_on_fire}
        return Finding(trial, worker, "GLOBAL", step, (),
                       f"worker {worker} of trial {trial!r} sent nothing for {gap:.6g} s "
                       f"(threshold {self.threshold:g} s); its last step is "
                       + (str(state.step) if state.step >= 0 else "unknown (only log lines)"),
                       details, state.last_ts)

    def horizon(self) -> float:
        return self.threshold

    def session_of(self, state: _Worker) -> str | None:
        return state.session
