"""The objective metric of a tuning job: each trial's final and best value, and a ranking.

As SageMaker reports it, the final value is the last finite one; the best is the best finite value
in the objective's direction. Non-finite values are published as metrics but never count here.

>>> tracker = ObjectiveTracker(Objective("loss", "Minimize"))
>>> for trial, values in {"a": [0.9, 0.4, 0.5], "b": [0.8, 0.3, float("nan")]}.items():
...     for step, value in enumerate(values):
...         tracker.record(trial, "0", step, value)
>>> tracker.saw_trial("c")
>>> [(r.trial, r.final, r.final_step, r.best, r.best_step) for r in tracker.ranking()]
[('b', 0.3, 1, 0.3, 1), ('a', 0.5, 2, 0.4, 1)]
>>> tracker.never_emitted()
['c']
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from dataclasses import dataclass, fields
from typing import Any

from .base import ConfigError

DIRECTIONS = ("Minimize", "Maximize")


@dataclass(frozen=True)
class Objective:
    """``HyperParameterTuningJobObjective``: the metric and ``Minimize`` or ``Maximize``."""

    metric: str
    type: str = "Minimize"

    def __post_init__(self) -> None:
        canonical = {d.lower(): d for d in DIRECTIONS}.get(str(self.type).lower())
        if canonical is None:
            raise ConfigError(f"objective {self.metric!r}", "Type",
                              f"expected Minimize or Maximize, got {self.type!r}")
        object.__setattr__(self, "type", canonical)


@dataclass(slots=True)
class ObjectiveResult:
    """One trial's objective: the final (last finite) and the best value, each with its step."""

    trial: str
    final: float
    final_step: int
    final_worker: str
    best: float
    best_step: int
    best_worker: str
    values: int

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class ObjectiveTracker:
    """Per-trial objective results; :meth:`ranking` orders trials by final value, best first.

    ``results`` holds, for every trial seen in order, its result or ``None`` (no finite value
    yet): a plain dict by default; the engine passes a view of its state store, so that the
    results are forgotten, sized and snapshotted with their trial.
    """

    def __init__(self, objective: Objective,
                 results: MutableMapping[str, ObjectiveResult | None] | None = None) -> None:
        self.objective = objective
        self._sign = 1.0 if objective.type == "Minimize" else -1.0
        self._results: MutableMapping[str, ObjectiveResult | None] = {} if results is None else results

    def saw_trial(self, trial: str) -> None:
        if trial not in self._results:
            self._results[trial] = None

    def record(self, trial: str, worker: str, step: int, value: float) -> None:
        result = self._results.get(trial)
        if not math.isfinite(value):
            if result is None and trial not in self._results:
                self._results[trial] = None
            return
        if result is None:
            self._results[trial] = ObjectiveResult(trial, value, step, worker, value, step, worker, 1)
            return
        result.final, result.final_step, result.final_worker = value, step, worker
        result.values += 1
        if self._sign * value < self._sign * result.best:
            result.best, result.best_step, result.best_worker = value, step, worker
        self._results[trial] = result  # changed in place: said, so that a store sizes it again

    def result(self, trial: str) -> ObjectiveResult | None:
        return self._results.get(trial)

    def ranking(self) -> list[ObjectiveResult]:
        """Trials that emitted the objective, best final value first (ties: first seen first)."""
        emitted = [result for result in self._results.values() if result is not None]
        return sorted(emitted, key=lambda r: self._sign * r.final)  # stable: first seen first

    def never_emitted(self) -> list[str]:
        """Trials seen that never emitted a finite objective value."""
        return [trial for trial, result in self._results.items() if result is None]

    def forget(self, trial: str) -> None:
        self._results.pop(trial, None)
