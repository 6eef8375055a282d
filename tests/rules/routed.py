"""Feeding a rule one written event as the engine routes it: one observation per view it feeds.

The engine selects (``rule.selects``), fans an event out to the views of its written mode
(``rule.views``) and builds one :class:`Observation` per view, with the series (worker, view key,
name); these builders do the same by hand, so rule tests need no engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trainsentry.rules.base import Finding, Observation
from trainsentry.rules.rule_run import RuleRun


def observations(run: RuleRun, name: str, step: int, value: float | None = None, data: Any = None,
                 *, mode: str = "TRAIN", collections: Sequence[str] = (), worker: str = "0",
                 trial: str = "trial", reductions: Mapping[str, float] | None = None,
                 ts: float | None = None) -> list[Observation]:
    """What ``run``'s rule is shown of one event (none when it does not select it)."""
    collections = tuple(collections)
    if not run.rule.selects(name, collections):
        return []
    array = None if data is None else np.asarray(data)
    if value is None and array is not None and array.size == 1:
        value = float(array.reshape(-1)[0])
    return [Observation(trial, worker, view.mode, name, step, collections,
                        float(step) if ts is None else ts, (worker, view.key, name), value, array,
                        reductions)
            for view in run.rule.views(mode)]


def feed(run: RuleRun, name: str, step: int, value: float | None = None, data: Any = None,
         **fields: Any) -> list[Finding]:
    """The findings of one event, routed as the engine routes it."""
    return run.feed_all(observations(run, name, step, value, data, **fields))
