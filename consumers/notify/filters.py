"""Which alerts a person wants to hear about: some trials, some rules, a lowest severity.

Shared by ``notify`` and ``tail``. A rule is matched by its configured name or by its built-in type,
so ``--rule LossNotDecreasing`` also keeps a rule configured as ``name = "loss-stalled"``.

>>> from trainsentry.protocol import AlertEvent
>>> a = AlertEvent(trial="run-1", ts=1.0, id="x", rule="loss-stalled", rule_type="LossNotDecreasing",
...                mode="TRAIN", step=3, tensors=("loss",), message="m", details={}, event_ts=1.0)
>>> AlertFilter(rules=frozenset({"LossNotDecreasing"})).keeps(a, Severity.WARNING)
True
>>> AlertFilter(min_severity=Severity.ERROR).keeps(a, Severity.WARNING)
False
>>> AlertFilter(trials=frozenset({"run-2"})).keeps(a, Severity.ERROR)
False
"""

from __future__ import annotations

from dataclasses import dataclass

from trainsentry.protocol import AlertEvent

from .severity import Severity


@dataclass(frozen=True)
class AlertFilter:
    """``None`` (or ``INFO`` for the severity) keeps everything on that count."""

    trials: frozenset[str] | None = None
    rules: frozenset[str] | None = None
    min_severity: Severity = Severity.INFO

    def keeps(self, alert: AlertEvent, severity: Severity) -> bool:
        if self.trials is not None and alert.trial not in self.trials:
            return False
        if self.rules is not None and alert.rule not in self.rules and alert.rule_type not in self.rules:
            return False
        return severity >= self.min_severity

    @classmethod
    def of(cls, trials: list[str] | tuple[str, ...] = (), rules: list[str] | tuple[str, ...] = (),
           min_severity: Severity = Severity.INFO) -> AlertFilter:
        """Empty lists keep every trial and every rule (the command-line convention)."""
        return cls(frozenset(trials) or None, frozenset(rules) or None, min_severity)
