"""VanishingGradient: the mean absolute value of a gradient is below a threshold."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import TRAINING_VIEWS, Finding, Observation, Param, Rule
from .element_wise import as_float64, tensor_finding
from .params import names, number, patterns
from .selection import TensorSelection


class VanishingGradient(Rule[None]):
    """Fires for a gradient whose mean absolute value is below ``threshold``.

    docs/rules.md, "VanishingGradient". Per selected tensor, in float64::

        m = mean(|g|) over the non-NaN elements        fires  iff  m < threshold   (strict)

    All elements NaN: skipped and counted. An infinite element makes ``m`` infinite: never fires.
    From a tensor sent with only ``reductions``: ``m = l1 / count``.

    Inputs: ``collection_names`` (default ``gradients``) united with ``tensor_regex``. Modes: the
    TRAIN series and the series written with mode GLOBAL (gradients belong to training); EVAL and
    PREDICT are ignored. Stateless.

    Decisions where the SageMaker documentation is silent: NaN elements are left out of the mean;
    a zero-size tensor has no mean (skipped, "empty tensor"); reductions without ``l1`` or with a
    ``count`` that is not a positive number, and reductions giving a NaN mean, are skipped and
    counted; integer and bool gradients are compared like any other, in float64.

    Examples
    --------
    The docs/rules.md vector: ``[1e-8, -1e-8, 0, 2e-8]`` has ``m = 1e-8 < 1e-7``.

    >>> from trainsentry.rules.rule_run import RuleRun
    >>> run = RuleRun(VanishingGradient())
    >>> found = run.feed(Observation.of("fc1.weight.grad", 5, data=[1e-8, -1e-8, 0, 2e-8],
    ...                                 collections=("gradients",)))
    >>> print(found.step, found.message)
    5 fc1.weight.grad: mean |gradient| 1e-08 < threshold 1e-07
    >>> run.feed(Observation.of("fc1.weight.grad", 6, data=[1e-6, 0], collections=("gradients",))) is None
    True
    """

    rule_type = "VanishingGradient"
    params = {
        "threshold": Param(number(), 1e-7, "mean |gradient| below which it fires"),
        "collection_names": Param(names, ("gradients",), "collections of gradient tensors"),
        "tensor_regex": Param(patterns, (), "regexes (re.search) of gradient tensor names"),
    }

    threshold: float
    collection_names: tuple[str, ...]
    tensor_regex: tuple[str, ...]

    def __init__(self, name: str | None = None, **values: Any) -> None:
        super().__init__(name, **values)
        self.views_by_mode = TRAINING_VIEWS
        self.selection = TensorSelection(self.collection_names, self.tensor_regex)

    def observe(self, state: None, obs: Observation) -> Finding | None:
        values = obs.array()
        if values is None:
            mean = self._from_reductions(obs)
        elif values.size == 0:
            self.skip("empty tensor")
            return None
        else:
            mean = self._mean_abs(values)
        if mean is None:
            return None
        if not mean < self.threshold:
            return None
        return tensor_finding(
            obs, f"{obs.name}: mean |gradient| {mean:.6g} < threshold {self.threshold:g}",
            {"mean_abs": mean}, threshold=self.threshold)

    def _mean_abs(self, values: np.ndarray) -> float | None:
        flat = as_float64(values).ravel()
        nan = np.isnan(flat)
        if nan.any():
            flat = flat[~nan]
            if flat.size == 0:
                self.skip("all NaN")
                return None
        with np.errstate(over="ignore"):  # a sum beyond float64 is inf: a large mean, no fire
            return float(np.abs(flat).mean())

    def _from_reductions(self, obs: Observation) -> float | None:
        reductions = obs.reductions or {}
        l1, count = reductions.get("l1"), reductions.get("count")
        if l1 is None or count is None or not count > 0:
            self.skip("reductions without l1 and a positive count" if obs.reductions is not None
                      else "no data")
            return None
        mean = l1 / count
        if math.isnan(mean):
            self.skip("all NaN")
            return None
        return mean
