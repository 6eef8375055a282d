"""One-line messages for people, each said once: per trial (kept in its book) or per engine."""

from __future__ import annotations

from collections.abc import Sequence

from trainsentry.consumers.state import TrialState
from trainsentry.rules.base import Rule

from .trial import TrialBook

SELECTION_NOTICE_AFTER = 1000  # tensor/scalar events of a trial before "selects nothing" is said


class Notices:
    """The notices queued since the last :meth:`drain`."""

    def __init__(self) -> None:
        self._queued: list[str] = []
        self._said: set[str] = set()  # notices about no one trial

    def add(self, message: str) -> None:
        """Queue ``message`` (whether or not it was said before)."""
        self._queued.append(message)

    def once(self, message: str) -> None:
        """Queue ``message`` unless this engine has said it already."""
        if message not in self._said:
            self._said.add(message)
            self._queued.append(message)

    def about(self, state: TrialState, key: str, message: str) -> None:
        """Queue ``message`` unless the trial of ``state`` has said ``key`` already."""
        book: TrialBook = state.head
        if key not in book.said:
            book.said += (key,)
            state.touch_head()
            self._queued.append(message)

    def unselected(self, trial: str, state: TrialState, rules: Sequence[Rule], at_end: bool) -> None:
        """Say, once per trial and rule, that a rule has taken no value of the trial."""
        book: TrialBook = state.head
        seen = (f"in its {book.value_events} tensor/scalar events" if at_end
                else f"in its first {SELECTION_NOTICE_AFTER} tensor/scalar events")
        for index, rule in enumerate(rules):
            if not (book.selected | book.stopped | book.failed) >> index & 1 and index not in state.tables:
                self.about(state, f"unselected:{index}",
                           f"trial {trial!r}: rule {rule.name!r} ({rule.rule_type}) selects no "
                           f"series {seen}; {rule.selection_hint()}")

    def drain(self) -> list[str]:
        """The notices queued since the last call, in order."""
        queued, self._queued = self._queued, []
        return queued
