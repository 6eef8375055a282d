"""One rule run by hand over observations, its states in a dict: for examples and unit tests.

The engine is what runs rules for real (it routes, orders, de-duplicates, owns and sizes the
states); :class:`RuleRun` only holds the states, so a rule's own logic can be tried in isolation.

>>> from trainsentry.rules.loss_not_decreasing import LossNotDecreasing
>>> run = RuleRun(LossNotDecreasing(num_steps=1))
>>> [f.step for f in run.feed_all(Observation.of("loss", s, v, collections=("losses",))
...                               for s, v in enumerate([1.0, 0.9, 0.95]))]
[2]
>>> len(run.states)
1
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

from .base import Finding, Observation, Rule


class RuleRun:
    """Feeds observations to one rule, keeping one state per (trial, :meth:`Rule.state_key`)."""

    def __init__(self, rule: Rule[Any]) -> None:
        self.rule = rule
        self.states: dict[tuple[str, Hashable], Any] = {}

    def feed(self, obs: Observation) -> Finding | None:
        """The rule's finding for ``obs`` (``None`` when it does not fire)."""
        key = (obs.trial, self.rule.state_key(obs))
        state = self.states.get(key)
        if state is None:
            state = self.states[key] = self.rule.new_state()
        return self.rule.observe(state, obs)

    def feed_all(self, observations: Iterable[Observation]) -> list[Finding]:
        """Every finding of ``observations``, in order."""
        return [finding for obs in observations if (finding := self.feed(obs)) is not None]
