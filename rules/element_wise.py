"""What the element-wise rules share: the required selection, their input array, their finding.

The element-wise rules (ExplodingTensor, VanishingGradient, DeadRelu, UnchangedTensor, AllZero,
TensorVariance) judge each tensor of a step on its own (docs/rules.md, "The wider catalogue"): a
``scalar`` is a one-element tensor; a zero-size tensor is skipped and counted; a tensor sent with
only ``reductions`` is used where the rule says how, else skipped and counted. The verdict of a step
is "yes" at the first selected tensor that fires, and the alert lists that tensor with its numbers
(tensors of the step arriving later never emit a second alert for it).

>>> from trainsentry.rules.base import Observation
>>> required_selection({"collection_names": (), "tensor_regex": ()})
Traceback (most recent call last):
...
trainsentry.rules.base.ParamProblem: give collection_names or tensor_regex: one is required
>>> tensor_finding(Observation.of("w", 3, data=[0.0]), "w is all zero", {"zero_percent": 100.0},
...                threshold=100.0).details
{'tensors': {'w': {'zero_percent': 100.0}}, 'threshold': 100.0}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Finding, Observation, ParamProblem, Rule


def required_selection(values: dict[str, Any]) -> dict[str, Any]:
    """``finish_params`` of a rule whose ``collection_names`` and ``tensor_regex`` are "one required"."""
    if not values["collection_names"] and not values["tensor_regex"]:
        raise ParamProblem("collection_names", "give collection_names or tensor_regex: one is required")
    return values


def elements(rule: Rule[Any], obs: Observation) -> np.ndarray | None:
    """The tensor's elements (a scalar as a 0-d array), or ``None`` after counting why not.

    Reasons counted: ``"reductions only"`` (a tensor sent with summaries instead of its bytes),
    ``"empty tensor"`` (zero elements).
    """
    values = obs.array()
    if values is None:
        rule.skip("reductions only" if obs.reductions is not None else "no data")
        return None
    if values.size == 0:
        rule.skip("empty tensor")
        return None
    return values


def as_float64(values: np.ndarray) -> np.ndarray:
    """``values`` in float64 (bool as 0 and 1, integers exactly up to 2**53); no copy if already so."""
    return values.astype(np.float64, copy=False)


def tensor_finding(obs: Observation, message: str, numbers: dict[str, Any],
                   **parameters: Any) -> Finding:
    """The finding for one tensor of a step: details list it with its numbers, then the parameters."""
    return Finding(obs.trial, obs.worker, obs.mode, obs.step, (obs.name,), message,
                   {"tensors": {obs.name: numbers}, **parameters}, obs.ts)
