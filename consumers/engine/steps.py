"""Steps far from their series: one stray step must not silence a series for good.

A series takes its steps in rising order, and a step at or below its newest one is late. So one
event at a step far ahead (a corrupt or hostile ``step``, say 2^63 - 1) would make every later
event of the series late. The engine therefore treats a step more than :data:`MAX_STEP_JUMP`
away from its series' newest step as an *outlier*, and believes it only when the next event of
the series continues from it (a step above it by at most :data:`MAX_STEP_JUMP`):

- **ahead**: an outlier ahead is not taken (counted as implausible, said once per trial); the
  series keeps its newest step, and its next plausible step forgets the outlier. Confirmed by
  the next event, the series goes on from that event (a writer that really jumped loses one).
- **behind**: an outlier behind is late, as any step at or below the newest; confirmed by the
  next event, the newest step was the stray one (the first event of the series, or a writer that
  restarted far below it): the series restarts at that event, its rules' states for it afresh.

A well-behaved stream never moves by more than 2^32 steps at once, so its alerts and their ids
are exactly what they were without this rule (docs/rules.md, "Late, duplicate and missing steps").
"""

from __future__ import annotations

from collections.abc import Hashable

from trainsentry.consumers.state import TrialState
from trainsentry.protocol import ScalarEvent, TensorEvent
from trainsentry.protocol.rendering import brief

from .notices import Notices
from .stats import EngineStats
from .trial import STEP_OUTLIERS

MAX_STEP_JUMP = 2**32


class StepOutliers:
    """Decides about steps more than :data:`MAX_STEP_JUMP` from their series' newest step."""

    def __init__(self, stats: EngineStats, notices: Notices) -> None:
        self._stats = stats
        self._notices = notices

    def ahead(self, state: TrialState, series: Hashable, step: int, last: int,
              event: ScalarEvent | TensorEvent) -> bool:
        """Whether to take ``step``, far ahead of ``last``: only when it continues an outlier."""
        if self._confirms(state, series, step):
            self._stats.step_jumps += 1
            return True
        self._stats.implausible_steps += 1
        self._notices.about(state, "implausible step", (
            f"trial {brief(event.trial)}: step {step} of {brief(event.name)} (worker "
            f"{brief(event.worker)}) is more than 2^32 beyond its newest step {last}; ignored "
            f"unless the next event of that series continues from it; further ones only counted"))
        return False

    def behind(self, state: TrialState, series: Hashable, step: int, last: int,
               event: ScalarEvent | TensorEvent) -> bool:
        """Whether the series restarts at ``step``, far behind ``last``: when it continues an
        outlier (the caller counts it late otherwise)."""
        if not self._confirms(state, series, step):
            return False
        self._stats.restarted_series += 1
        self._notices.about(state, "restarted series", (
            f"trial {brief(event.trial)}: {brief(event.name)} (worker {brief(event.worker)}) "
            f"restarts at step {step}: two events in a row were more than 2^32 below its newest "
            f"step {last}, which is taken for a stray one; further restarts only counted"))
        return True

    @staticmethod
    def settled(state: TrialState, series: Hashable) -> None:
        """A plausible step of ``series`` came: forget its outlier, if any."""
        table = state.tables.get(STEP_OUTLIERS)
        if table is not None:
            table.delete(series)

    @staticmethod
    def _confirms(state: TrialState, series: Hashable, step: int) -> bool:
        """Whether ``step`` continues the series' outlier (then forgotten); else it is the outlier."""
        table = state.table(STEP_OUTLIERS)
        pending = table.entries.get(series)
        if pending is not None and pending < step <= pending + MAX_STEP_JUMP:
            table.delete(series)
            return True
        table.put(series, step)
        return False
