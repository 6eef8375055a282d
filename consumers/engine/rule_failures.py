"""A rule that raises: disabled for its trial, said once, and the other rules go on.

A rule (a user's, or a built-in one with a bug) that raises while it evaluates a value of a trial
would otherwise take the whole event with it, and every other rule's verdict on it. Instead the
engine catches the exception, disables that rule for that trial (its states there are released,
and it sees no more of the trial's values, in any session), counts it, and says once, in one line,
which rule raised what and where; the event goes on to the other rules.

>>> try:
...     {}["x"]
... except KeyError as exc:
...     print(describe_failure(exc).split(" at ")[0])
KeyError: 'x'
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence

from trainsentry.consumers.state import TrialState
from trainsentry.protocol.rendering import brief
from trainsentry.rules.base import Rule

from .notices import Notices
from .stats import EngineStats
from .trial import TrialBook

_SHOWN = 300  # characters of the exception's message in the notice


def describe_failure(exc: BaseException) -> str:
    """``Type: message at file:line in function``, the innermost frame, in one line."""
    message = " ".join(str(exc).split())
    if len(message) > _SHOWN:
        message = message[:_SHOWN - 3] + "..."
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
    return f"{type(exc).__name__}: {message}{where}" if message else f"{type(exc).__name__}{where}"


class RuleFailures:
    """Disables a rule that raised, for the trial it raised in (see the module's docstring)."""

    def __init__(self, rules: Sequence[Rule], notices: Notices, stats: EngineStats) -> None:
        self._rules = tuple(rules)
        self._notices = notices
        self._stats = stats

    def disable(self, trial: str, state: TrialState, index: int, exc: Exception, what: str) -> None:
        """Rule ``index`` raised ``exc`` on ``what`` (e.g. "step 3 of 'loss'") in ``trial``."""
        book: TrialBook = state.head
        book.failed |= 1 << index
        state.touch_head()
        state.drop(index)
        self._stats.rule_failures += 1
        rule = self._rules[index]
        self._notices.about(state, f"failed:{index}", (
            f"trial {brief(trial)}: rule {rule.name!r} ({rule.rule_type}) raised "
            f"{describe_failure(exc)} on {what}; it is disabled for this trial, the other rules "
            f"go on"))
