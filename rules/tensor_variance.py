"""TensorVariance: the variance of a tensor is above or below a threshold."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Finding, Observation, Param, ParamProblem, Rule
from .element_wise import as_float64, required_selection, tensor_finding
from .params import names, number, optional, patterns
from .selection import TensorSelection


class TensorVariance(Rule[None]):
    """Fires for a tensor whose variance is above ``max_threshold`` or below ``min_threshold``.

    docs/rules.md, "TensorVariance". Per selected tensor, in float64::

        var = population variance (ddof 0) of the non-NaN elements
        fires  iff  var > max_threshold  or  var < min_threshold          (strict; an absent one never)

    No non-NaN element, or a non-finite ``var`` (an infinite element): skipped and counted. From a
    tensor sent with only ``reductions``: ``variance``, else ``std ** 2``; neither, skipped and counted.

    Inputs: ``collection_names`` and ``tensor_regex`` (their union; one is required); at least one
    of ``max_threshold`` and ``min_threshold`` is required. Modes: TRAIN, EVAL and GLOBAL-written
    series, each its own; PREDICT is not evaluated (no ``mode`` parameter). A zero-size tensor is
    skipped and counted. Stateless.

    Decisions where the SageMaker documentation is silent: with both thresholds given,
    ``min_threshold`` must be below ``max_threshold`` (otherwise every variance would fire); a
    variance that overflows float64's squares but is finite (elements near 1e154 and above) is
    computed on values scaled by their largest magnitude, so it is not mistaken for infinite.

    Examples
    --------
    >>> from trainsentry.rules.rule_run import RuleRun
    >>> run = RuleRun(TensorVariance(collection_names="weights", max_threshold="4", min_threshold="1e-6"))
    >>> print(run.feed(Observation.of("fc.weight", 0, data=[-3.0, 3.0], collections=("weights",))).message)
    fc.weight: variance 9 > max_threshold 4
    >>> print(run.feed(Observation.of("fc.weight", 1, data=[0.5, 0.5], collections=("weights",))).message)
    fc.weight: variance 0 < min_threshold 1e-06
    >>> run.feed(Observation.of("fc.weight", 2, data=[1.0, 2.0], collections=("weights",))) is None
    True
    """

    rule_type = "TensorVariance"
    params = {
        "collection_names": Param(names, (), "collections to check (with tensor_regex: the union)"),
        "tensor_regex": Param(patterns, (), "regexes (re.search) of tensor names to check"),
        "max_threshold": Param(optional(number()), None, "variance above which it fires"),
        "min_threshold": Param(optional(number()), None, "variance below which it fires"),
    }

    collection_names: tuple[str, ...]
    tensor_regex: tuple[str, ...]
    max_threshold: float | None
    min_threshold: float | None

    @classmethod
    def finish_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        low, high = values["min_threshold"], values["max_threshold"]
        if low is None and high is None:
            raise ParamProblem("max_threshold", "give max_threshold or min_threshold: at least "
                               "one is required")
        if low is not None and high is not None and not low < high:
            raise ParamProblem("min_threshold", f"{low:g} must be < max_threshold {high:g}")
        return required_selection(values)

    def __init__(self, name: str | None = None, **values: Any) -> None:
        super().__init__(name, **values)
        self.selection = TensorSelection(self.collection_names, self.tensor_regex)

    def observe(self, state: None, obs: Observation) -> Finding | None:
        values = obs.array()
        if values is None:
            var = self._from_reductions(obs)
        elif values.size == 0:
            self.skip("empty tensor")
            return None
        else:
            var = self._variance(values)
        if var is None:
            return None
        if not math.isfinite(var):
            self.skip("non-finite variance")
            return None
        if self.max_threshold is not None and var > self.max_threshold:
            verdict, bound = ">", ("max_threshold", self.max_threshold)
        elif self.min_threshold is not None and var < self.min_threshold:
            verdict, bound = "<", ("min_threshold", self.min_threshold)
        else:
            return None
        return tensor_finding(obs, f"{obs.name}: variance {var:.6g} {verdict} {bound[0]} {bound[1]:g}",
                              {"variance": var}, max_threshold=self.max_threshold,
                              min_threshold=self.min_threshold)

    def _variance(self, values: np.ndarray) -> float | None:
        flat = as_float64(values).ravel()
        nan = np.isnan(flat)
        if nan.any():
            flat = flat[~nan]
            if flat.size == 0:
                self.skip("all NaN")
                return None
        with np.errstate(all="ignore"):  # inf - inf is NaN and overflow inf: both handled below
            var = float(np.var(flat))
            if not math.isfinite(var) and np.isfinite(flat).all():
                # finite elements whose squares (or sum) overflow: scale by the largest magnitude
                scale = float(np.abs(flat).max())
                std = scale * math.sqrt(float(np.var(flat / scale)))
                var = std * std
        return var

    def _from_reductions(self, obs: Observation) -> float | None:
        reductions = obs.reductions or {}
        if "variance" in reductions:
            return float(reductions["variance"])
        if "std" in reductions:
            std = float(reductions["std"])
            return std * std  # not ** 2: a float power overflowing raises instead of giving inf
        self.skip("reductions without variance or std" if obs.reductions is not None else "no data")
        return None
