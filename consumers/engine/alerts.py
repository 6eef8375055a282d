"""From a rule's finding to an alert: one per (trial, rule, worker, mode, step), with a stable id.

A finding becomes an :class:`AlertEvent` unless that (trial, rule, worker, mode, step) alerted
already in the writer session of the event behind it; the id is a hash of those five, and of the
session when the event carries one, so a replay of the same events gives the same ids and a
resumed run's alerts are not taken for repeats. The alert carries the rule's severity. A rule
with ``stop_at_first`` is stopped for the trial at its first alert and its states there are
dropped (a new session starts it afresh, :mod:`.sessions`).
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Sequence

from trainsentry.consumers.state import TrialState
from trainsentry.protocol import AlertEvent
from trainsentry.rules.base import Finding, Rule

from .stats import EngineStats
from .trial import FIRED, TrialBook

FIRED_STEPS_KEPT = 256  # alerted steps remembered per (trial, rule, worker, mode)


def alert_id(trial: str, rule: str, worker: str, mode: str, step: int,
             session: str | None = None) -> str:
    """The deterministic id of the alert for (trial, rule, worker, mode, step) and ``session``.

    Without a session the id is what it was before sessions existed.

    >>> alert_id("run-1", "LossNotDecreasing", "0", "TRAIN", 12) == alert_id(
    ...     "run-1", "LossNotDecreasing", "0", "TRAIN", 12)
    True
    >>> len(alert_id("run-1", "LossNotDecreasing", "0", "TRAIN", 12))
    32
    >>> alert_id("run-1", "LossNotDecreasing", "0", "TRAIN", 12, "b7e1") == alert_id(
    ...     "run-1", "LossNotDecreasing", "0", "TRAIN", 12)
    False
    """
    parts: list[object] = [trial, rule, worker, mode, step]
    if session is not None:
        parts.append(session)
    key = json.dumps(parts, ensure_ascii=False)
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class FiredSteps:
    """The steps one (trial, rule, worker, mode) alerted at, bounded.

    The newest :data:`FIRED_STEPS_KEPT` are remembered; a finding at or below the floor of the
    forgotten ones is suppressed (counted), so no step ever alerts twice.

    >>> fired = FiredSteps()
    >>> fired.add(3), fired.add(3), fired.add(4)
    ('new', 'again', 'new')
    """

    __slots__ = ("steps", "heap", "floor")

    def __init__(self) -> None:
        self.steps: set[int] = set()
        self.heap: list[int] = []
        self.floor = -1

    def add(self, step: int) -> str:
        """``"new"``, ``"again"`` (already alerted) or ``"stale"`` (below the floor)."""
        if step in self.steps:
            return "again"
        if step <= self.floor:
            return "stale"
        self.steps.add(step)
        heapq.heappush(self.heap, step)
        if len(self.heap) > FIRED_STEPS_KEPT:
            self.floor = heapq.heappop(self.heap)
            self.steps.discard(self.floor)
        return "new"


class Alerts:
    """Turns findings into alerts, remembering in each trial the steps that alerted."""

    def __init__(self, rules: Sequence[Rule], stats: EngineStats) -> None:
        self._rules = tuple(rules)
        self._stats = stats

    def alert(self, index: int, finding: Finding, state: TrialState,
              session: str | None = None) -> AlertEvent | None:
        """The alert of rule ``index``'s ``finding`` about an event of writer ``session``, or
        ``None`` when its step alerted already in that session."""
        rule = self._rules[index]
        fired_table = state.table(FIRED)
        key: tuple[object, ...] = (index, finding.worker, finding.mode)
        if session is not None:
            key += (session,)
        fired = fired_table.entries.get(key)
        if fired is None:
            fired = FiredSteps()
            fired_table.put(key, fired)
        verdict = fired.add(finding.step)
        if verdict != "new":
            if verdict == "stale":
                self._stats.suppressed_findings += 1
            return None
        fired_table.touch(key)
        alerts = self._stats.alerts
        alerts[rule.name] = alerts.get(rule.name, 0) + 1
        if rule.stop_at_first:
            book: TrialBook = state.head
            book.stopped |= 1 << index
            state.touch_head()
            state.drop(index)
        return AlertEvent(
            trial=finding.trial, ts=finding.event_ts,
            id=alert_id(finding.trial, rule.name, finding.worker, finding.mode, finding.step,
                        session),
            rule=rule.name, rule_type=rule.rule_type, mode=finding.mode, step=finding.step,
            tensors=finding.tensors, message=finding.message, details=finding.details,
            event_ts=finding.event_ts, worker=finding.worker, severity=rule.severity)
