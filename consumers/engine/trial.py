"""What the engine keeps about each trial besides the rules' states, and where in the store.

Every per-trial value lives in the engine's :class:`~trainsentry.consumers.state.StateStore`, so
forgetting, sizing and snapshotting a trial covers all of it. The trial's head is its
:class:`TrialBook`; its slots:

============  =====  =====================================  ==========================================
slot          fixed  key                                    value
============  =====  =====================================  ==========================================
``i`` (int)          the rule's ``state_key`` (a series)    rule ``i``'s state (config order)
LAST_STEP     yes    series (worker, view key, name)        the newest step taken
FIRED                (rule index, worker, mode[, session])  :class:`~.alerts.FiredSteps`
LOG_SEQ       yes    (worker, stream, session)              the newest log ``seq`` taken
METRIC_STEPS  yes    (worker, metric name)                  metric values so far (the next step)
OBJECTIVE            ``None``                               its ``ObjectiveResult``, or ``None``
DISABLED             ``None``                               names of its disabled metric definitions
METRIC_EXCESS        ``None``                               definition name -> matching time owed (s)
STEP_OUTLIERS        series (worker, view key, name)        a step far from the newest, unconfirmed
SESSIONS             worker, or ("logs", worker)            its writer sessions, in order first seen
SERIES_SESSION yes   series (worker, view key, name)        ordinal of its session, once not 0
STATE_SESSION  yes   (rule index, the rule's state key)     ordinal of the state's session, once not 0
============  =====  =====================================  ==========================================

A trial records at most :data:`MAX_WORKERS_PER_TRIAL` workers (its series are capped apart,
:mod:`.capacity`): the list is scanned per event, and a trial ends when every worker listed has
sent its end marker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trainsentry.consumers.state import StateStore, TrialState
from trainsentry.rules.objective import ObjectiveTracker

if TYPE_CHECKING:
    from .capacity import TrialCapacity

LAST_STEP = "last step"
FIRED = "fired"
LOG_SEQ = "log seq"
METRIC_STEPS = "metric steps"
OBJECTIVE = "objective"
DISABLED = "disabled metrics"
METRIC_EXCESS = "metric excess"
STEP_OUTLIERS = "step outliers"
SESSIONS = "sessions"
SERIES_SESSION = "series session"
STATE_SESSION = "state session"

MAX_WORKERS_PER_TRIAL = 1024

FIXED_SLOTS = frozenset({LAST_STEP, LOG_SEQ, METRIC_STEPS, SERIES_SESSION, STATE_SESSION})


class TrialBook:
    """The engine's own record of a trial: counters, workers, and which notices were said.

    ``selected`` and ``stopped`` are bit sets over rule indices: bit ``i`` of ``selected`` is set
    once rule ``i``, a rule without state, has taken a value of the trial (a rule with state has
    then a table in the trial); of ``stopped``, once ``stop_at_first`` stopped rule ``i`` (until
    a new writer session); of ``failed``, once rule ``i`` raised (for good, :mod:`.rule_failures`).
    """

    __slots__ = ("value_events", "selected", "stopped", "failed", "said", "late", "duplicate",
                 "duplicate_lines", "workers", "ended")

    def __init__(self) -> None:
        self.value_events = 0                 # tensor and scalar events
        self.selected = 0
        self.stopped = 0
        self.failed = 0
        self.said: tuple[str, ...] = ()       # keys of the notices said about the trial
        self.late = self.duplicate = self.duplicate_lines = 0
        self.workers: tuple[str, ...] = ()    # every worker seen, in order
        self.ended: tuple[str, ...] = ()      # workers that sent their end marker


class Trials:
    """Opens a trial in the store: its book and last steps, and tells the objective tracker and,
    when given, the capacity (which may let the least recently active trial go)."""

    def __init__(self, store: StateStore, objectives: ObjectiveTracker | None,
                 capacity: TrialCapacity | None = None) -> None:
        self._store = store
        self._objectives = objectives
        self._capacity = capacity

    def open(self, trial: str) -> TrialState:
        """The trial's state, its book and its table of last steps created when missing."""
        state = self._store.trial(trial)
        if state.head is None:
            state.set_head(TrialBook())
            state.table(LAST_STEP, fixed=True)
            if self._objectives is not None:
                self._objectives.saw_trial(trial)
            if self._capacity is not None:
                self._capacity.opened(trial)
        return state

    @staticmethod
    def add_worker(state: TrialState, worker: str) -> None:
        """Remember ``worker`` in the trial's book (when it is new)."""
        book: TrialBook = state.head
        if worker not in book.workers and len(book.workers) < MAX_WORKERS_PER_TRIAL:
            book.workers += (worker,)
            state.touch_head()
