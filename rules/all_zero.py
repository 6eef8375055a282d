"""AllZero: (almost) every element of a tensor is zero."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Finding, Observation, Param, Rule
from .element_wise import elements, required_selection, tensor_finding
from .params import names, number, patterns
from .selection import TensorSelection


class AllZero(Rule[None]):
    """Fires for a tensor whose percent of zero elements is at least ``threshold``.

    docs/rules.md, "AllZero". Per selected tensor::

        zero_percent = 100 * count(x == 0) / size        fires  iff  zero_percent >= threshold

    ``+0.0`` and ``-0.0`` are zero, NaN is not; integer ``0`` and bool ``False`` are zero.

    Inputs: ``collection_names`` and ``tensor_regex`` (their union; one is required). Modes: TRAIN,
    EVAL and GLOBAL-written series, each its own; PREDICT is not evaluated (no ``mode`` parameter).
    A tensor sent with only ``reductions`` is skipped and counted (reductions cannot show how many
    elements are zero), as is a zero-size tensor. Stateless.

    Decisions where the SageMaker documentation is silent: the comparison is ``>=`` (the default
    100 means "all zero"); ``threshold`` is a percent from 0 to 100.

    Examples
    --------
    >>> from trainsentry.rules.rule_run import RuleRun
    >>> run = RuleRun(AllZero(collection_names="weights"))
    >>> print(run.feed(Observation.of("fc.weight", 0, data=[0.0, -0.0], collections=("weights",))).message)
    fc.weight: 100% of 2 elements are zero (>= 100%)
    >>> run.feed(Observation.of("fc.weight", 1, data=[0.0, 1e-30], collections=("weights",))) is None
    True
    """

    rule_type = "AllZero"
    params = {
        "collection_names": Param(names, (), "collections to check (with tensor_regex: the union)"),
        "tensor_regex": Param(patterns, (), "regexes (re.search) of tensor names to check"),
        "threshold": Param(number(at_least=0, at_most=100), 100.0,
                           "percent of zero elements at or above which it fires"),
    }

    collection_names: tuple[str, ...]
    tensor_regex: tuple[str, ...]
    threshold: float

    @classmethod
    def finish_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        return required_selection(values)

    def __init__(self, name: str | None = None, **values: Any) -> None:
        super().__init__(name, **values)
        self.selection = TensorSelection(self.collection_names, self.tensor_regex)

    def observe(self, state: None, obs: Observation) -> Finding | None:
        values = elements(self, obs)
        if values is None:
            return None
        zeros = int(values.size - np.count_nonzero(values))  # NaN is nonzero; -0.0 is zero
        percent = 100.0 * zeros / values.size
        if not percent >= self.threshold:
            return None
        return tensor_finding(
            obs, f"{obs.name}: {percent:.4g}% of {values.size} elements are zero "
            f"(>= {self.threshold:g}%)",
            {"zero_percent": percent, "zeros": zeros, "elements": int(values.size)},
            threshold=self.threshold)
