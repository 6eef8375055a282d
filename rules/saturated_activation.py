"""SaturatedActivation: too many nodes of a tanh or sigmoid layer sit outside the useful input range."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Finding, Observation, Param, ParamProblem, Rule
from .params import names, number, optional, patterns, value_range
from .selection import TensorSelection

_PERCENT = number(at_least=0, at_most=100)


class SaturatedActivation(Rule[None]):
    """Fires when more than ``threshold_layer`` percent of a layer's nodes are saturated.

    docs/rules.md, "SaturatedActivation". One tensor is one layer's activation input: a tanh input if
    its name contains ``tanh``, else a sigmoid input if it contains ``sigmoid``, else skipped. Axis 0
    is the batch and every other position a node (a 1-D tensor is one node with that many samples).
    A value is active when ``min < x < max`` (strict, float64); a node's activity is the percent of
    its non-NaN values that are active; a node is saturated when its activity
    ``< threshold_inactivity``, and a node with no non-NaN value is not saturated (it still counts
    as a node). It fires when ``100 * saturated / nodes > threshold_layer``. An infinite input is
    outside any threshold. A tensor with no elements (an empty batch such as shape ``[0, 16]``, or
    no nodes such as ``[16, 0]``) has nothing saturated: it never fires and is counted as skipped
    ("empty tensor"). Any protocol dtype is compared in float64 (bool as 0 and 1). The rule keeps
    no state between steps.

    Inputs: ``collection_names`` (default none) united with ``tensor_regex`` (default
    ``.*tanh_input, .*sigmoid_input``). Mode: EVAL and TRAIN independently, GLOBAL-written events as
    their own series, PREDICT never. Thresholds: ``threshold_tanh`` / ``threshold_sigmoid`` as
    ``(min, max)``, or the split forms ``threshold_tanh_min`` etc., which override one end.

    Where this rule departs from SageMaker's documentation: the documentation does not say whether
    the bounds are strict, how NaN counts, or which modes are evaluated; the choices above are
    this project's. A name containing both ``tanh`` and ``sigmoid`` is taken as tanh (this project's
    choice).

    Examples
    --------
    >>> rule = SaturatedActivation()
    >>> batch = np.zeros((4, 3))
    >>> batch[:, :2] = 12.0              # two of three nodes always beyond 9.4999
    >>> print(rule.observe(None, Observation.of("layer1.tanh_input", 0, data=batch)).message)
    layer1.tanh_input: 66.7% of 3 nodes saturated (> 50%)
    >>> rule.observe(None, Observation.of("layer1.sigmoid_input", 0, data=batch)) is None  # 12 < 16.99999
    True
    """

    rule_type = "SaturatedActivation"
    params = {
        "collection_names": Param(names, (), "collections of activation inputs"),
        "tensor_regex": Param(patterns, (".*tanh_input", ".*sigmoid_input"),
                              "regexes (re.search) of activation input names"),
        "threshold_tanh": Param(value_range, (-9.4999, 9.4999), "(min, max) active tanh input"),
        "threshold_sigmoid": Param(value_range, (-23.0, 16.99999), "(min, max) active sigmoid input"),
        "threshold_tanh_min": Param(optional(number()), None, "overrides threshold_tanh's min"),
        "threshold_tanh_max": Param(optional(number()), None, "overrides threshold_tanh's max"),
        "threshold_sigmoid_min": Param(optional(number()), None, "overrides threshold_sigmoid's min"),
        "threshold_sigmoid_max": Param(optional(number()), None, "overrides threshold_sigmoid's max"),
        "threshold_inactivity": Param(_PERCENT, 1.0, "percent activity below which a node is saturated"),
        "threshold_layer": Param(_PERCENT, 50.0, "percent of saturated nodes above which it fires"),
    }

    collection_names: tuple[str, ...]
    tensor_regex: tuple[str, ...]
    threshold_tanh: tuple[float, float]
    threshold_sigmoid: tuple[float, float]
    threshold_inactivity: float
    threshold_layer: float

    @classmethod
    def finish_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Fold the split forms into the ranges, so both spellings load to the same values."""
        for function in ("tanh", "sigmoid"):
            low, high = values[f"threshold_{function}"]
            low_given = values.pop(f"threshold_{function}_min")
            high_given = values.pop(f"threshold_{function}_max")
            low = low if low_given is None else low_given
            high = high if high_given is None else high_given
            if not low < high:
                raise ParamProblem(f"threshold_{function}", f"min {low:g} must be < max {high:g}")
            values[f"threshold_{function}"] = (low, high)
        return values

    def __init__(self, name: str | None = None, **values: Any) -> None:
        super().__init__(name, **values)
        self.selection = TensorSelection(self.collection_names, self.tensor_regex)

    def observe(self, state: None, obs: Observation) -> Finding | None:
        if "tanh" in obs.name:
            function, (low, high) = "tanh", self.threshold_tanh
        elif "sigmoid" in obs.name:
            function, (low, high) = "sigmoid", self.threshold_sigmoid
        else:
            self.skip("not a tanh or sigmoid input")
            return None
        values = obs.array()
        if values is None:
            self.skip("no data")
            return None
        # Explicit dimensions: reshape(0, -1) cannot infer the nodes of an empty batch.
        samples = values.shape[0] if values.ndim else 1
        width = math.prod(values.shape[1:])
        if samples == 0 or width == 0:  # no samples or no nodes: nothing can be saturated
            self.skip("empty tensor")
            return None
        nodes = values.astype(np.float64, copy=False).reshape(samples, width)
        active = np.count_nonzero((nodes > low) & (nodes < high), axis=0)  # NaN is never active
        present = nodes.shape[0] - np.count_nonzero(np.isnan(nodes), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            activity = 100.0 * active / present
        saturated = int(np.count_nonzero((present > 0) & (activity < self.threshold_inactivity)))
        percent = 100.0 * saturated / nodes.shape[1]
        if not percent > self.threshold_layer:
            return None
        return Finding(
            obs.trial, obs.worker, obs.mode, obs.step, (obs.name,),
            f"{obs.name}: {percent:.1f}% of {nodes.shape[1]} nodes saturated "
            f"(> {self.threshold_layer:g}%)",
            {"layers": {obs.name: percent}, "function": function, "threshold": [low, high],
             "saturated_nodes": saturated, "nodes": int(nodes.shape[1]),
             "threshold_inactivity": self.threshold_inactivity,
             "threshold_layer": self.threshold_layer},
            obs.ts)
