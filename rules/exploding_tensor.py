"""ExplodingTensor: a tensor holds NaN or infinite values."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Finding, Observation, Param, Rule
from .element_wise import tensor_finding
from .params import names, parse_bool, patterns
from .selection import TensorSelection

# Reductions whose value is non-finite when an element is; ``mean`` is NaN for +Inf beside -Inf
# too, so with ``only_nan`` it proves nothing about NaN and is left out.
_REDUCTIONS = ("min", "max", "mean", "l1", "l2")
_NAN_REDUCTIONS = ("min", "max", "l1", "l2")


class ExplodingTensor(Rule[None]):
    """Fires for a tensor that holds a NaN, or (``only_nan`` false) a +Inf or -Inf element.

    docs/rules.md, "ExplodingTensor". From data, per tensor::

        fires  iff  count(isnan(x)) > 0  or  (not only_nan and count(isinf(x)) > 0)

    From a tensor sent with only ``reductions``: ``nan_count > 0``, or a non-finite ``min``,
    ``max``, ``mean``, ``l1`` or ``l2``; with ``only_nan``, ``nan_count > 0`` or a NaN ``min``,
    ``max``, ``l1`` or ``l2``. Integer and bool tensors never fire. The details give, per tensor,
    the NaN and infinite element counts (from reductions: ``nan_count`` and the non-finite
    reductions, as given).

    Inputs: ``collection_names`` united with ``tensor_regex``; with neither, every tensor and scalar
    series of the trial, log-metric series included (a NaN loss parsed from a log line is news).
    Modes: TRAIN, EVAL and GLOBAL-written series, each its own; PREDICT is not evaluated (the rule
    has no ``mode`` parameter). Stateless.

    Decisions where the SageMaker documentation is silent:

    * ``only_nan`` with reductions: ``mean`` is not read (+Inf beside -Inf makes it NaN without
      any NaN element);
    * a zero-size tensor holds nothing: skipped and counted ("empty tensor"); a reductions-only
      tensor with none of ``nan_count``, ``min``, ``max``, ``mean``, ``l1``, ``l2`` is skipped and
      counted.

    Examples
    --------
    >>> from trainsentry.rules.rule_run import RuleRun
    >>> run = RuleRun(ExplodingTensor())
    >>> print(run.feed(Observation.of("fc.weight.grad", 7, data=[0.1, float("nan"), float("inf")])).message)
    fc.weight.grad: 1 NaN and 1 infinite of 3 elements
    >>> run.feed(Observation.of("loss", 7, 0.25)) is None
    True
    >>> RuleRun(ExplodingTensor(only_nan="True")).feed(Observation.of("x", 0, data=[float("-inf")])) is None
    True
    """

    rule_type = "ExplodingTensor"
    default_severity = "error"  # a NaN or infinity in training is always a failure
    params = {
        "collection_names": Param(names, (), "collections to check (with tensor_regex: the union)"),
        "tensor_regex": Param(patterns, (), "regexes (re.search) of tensor names to check"),
        "only_nan": Param(parse_bool, False, "fire on NaN only, not on infinities"),
    }

    collection_names: tuple[str, ...]
    tensor_regex: tuple[str, ...]
    only_nan: bool

    def __init__(self, name: str | None = None, **values: Any) -> None:
        super().__init__(name, **values)
        self.selection = TensorSelection(self.collection_names, self.tensor_regex)

    def selects(self, name: str, collections: tuple[str, ...]) -> bool:
        return self.selection.empty or self.selection.matches(name, collections)

    def selection_hint(self) -> str:
        if self.selection is not None and self.selection.empty:
            return "it reads every series written in TRAIN, EVAL or GLOBAL mode"
        return super().selection_hint()

    def observe(self, state: None, obs: Observation) -> Finding | None:
        values = obs.array()
        if values is None:
            return self._from_reductions(obs)
        if values.size == 0:
            self.skip("empty tensor")
            return None
        if values.dtype.kind != "f" or np.isfinite(values).all():  # one pass in the usual case
            return None
        nan = int(np.count_nonzero(np.isnan(values)))
        inf = int(np.count_nonzero(np.isinf(values)))
        if not nan and self.only_nan:
            return None
        kinds = [f"{nan} NaN"] * bool(nan) + [f"{inf} infinite"] * bool(inf)
        return tensor_finding(
            obs, f"{obs.name}: {' and '.join(kinds)} of {values.size} elements",
            {"nan": nan, "inf": inf, "elements": int(values.size)}, only_nan=self.only_nan)

    def _from_reductions(self, obs: Observation) -> Finding | None:
        reductions = obs.reductions
        if reductions is None:
            self.skip("no data")
            return None
        if "nan_count" not in reductions and not any(key in reductions for key in _REDUCTIONS):
            self.skip("reductions without nan_count, min, max, mean, l1 or l2")
            return None
        nan_count = reductions.get("nan_count")
        has_nan = nan_count is not None and nan_count > 0
        if self.only_nan:
            bad = {key: reductions[key] for key in _NAN_REDUCTIONS
                   if key in reductions and math.isnan(reductions[key])}
        else:
            bad = {key: reductions[key] for key in _REDUCTIONS
                   if key in reductions and not math.isfinite(reductions[key])}
        if not has_nan and not bad:
            return None
        shown = ([f"nan_count {nan_count:g}"] if has_nan else []) + [
            f"{key} {value}" for key, value in bad.items()]
        return tensor_finding(obs, f"{obs.name}: {', '.join(shown)} (reductions)",
                              {"nan_count": nan_count, "non_finite": bad}, only_nan=self.only_nan)
