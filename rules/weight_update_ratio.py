"""WeightUpdateRatio: the update of a weight tensor is too large or too small for its size."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import TRAINING_VIEWS, Finding, Observation, Param, Rule
from .params import integer, names, number, optional, patterns
from .selection import TensorSelection


class _PreviousWeights:
    """The previous saved tensor of one weight series: only it can be the next step's pair."""

    __slots__ = ("step", "weights", "ts", "norm")

    def __init__(self) -> None:
        self.step = -1
        self.weights: np.ndarray | None = None  # as written (a read-only view: no copy needed)
        self.ts = 0.0
        self.norm = 0.0


class WeightUpdateRatio(Rule[_PreviousWeights]):
    """Fires when ``||W_s - W_p|| / (||W_p|| + epsilon)`` is above ``large_threshold`` or below ``small_threshold``.

    docs/rules.md, "WeightUpdateRatio". Norms are Euclidean (Frobenius) over all elements, in float64;
    both comparisons are strict. The pair: with ``num_steps`` absent, ``p`` is the previous saved
    step of that tensor; with ``num_steps``, the newest saved step ``p < s`` with
    ``p >= s - num_steps`` (none: no evaluation). Either way only the previous saved tensor can be
    that step, so exactly one tensor per weight is kept.

    Unchanged weights give 0 and fire as too small, including a float32 update too small to change
    the stored values. An infinite change makes the ratio infinite (fires as large); NaN never fires.
    A tensor with no elements has no update to measure: it is skipped ("empty tensor", counted)
    and not kept, so the next tensor of that name is compared with the last non-empty one.
    Inputs: ``collection_names`` (default ``weights``) united with ``tensor_regex``, in the TRAIN
    series and the series written with mode GLOBAL (EVAL and PREDICT weights are ignored).

    Where this rule departs from SageMaker's documentation: SageMaker evaluated TRAIN steps when the
    run had any, else GLOBAL steps; a stream evaluates both, each as its own series.

    Examples
    --------
    >>> from trainsentry.rules.rule_run import RuleRun
    >>> run = RuleRun(WeightUpdateRatio())
    >>> w0 = np.ones(4, dtype=np.float32)
    >>> run.feed(Observation.of("fc.weight", 0, data=w0)) is None
    True
    >>> found = run.feed(Observation.of("fc.weight", 1, data=w0 + np.float32(1e-9)))
    >>> found.message
    'fc.weight update ratio 0 < small_threshold 1e-08 (steps 0 -> 1)'
    >>> run.feed(Observation.of("fc.weight", 2, data=w0 * 50)).message
    'fc.weight update ratio 49 > large_threshold 10 (steps 1 -> 2)'
    """

    rule_type = "WeightUpdateRatio"
    params = {
        "num_steps": Param(optional(integer(minimum=1)), None, "max steps between compared weights"),
        "large_threshold": Param(number(), 10.0, "ratio above which it fires"),
        "small_threshold": Param(number(), 1e-8, "ratio below which it fires"),
        "epsilon": Param(number(at_least=0), 1e-9, "added to the norm of the older weights"),
        "collection_names": Param(names, ("weights",), "collections of weight tensors"),
        "tensor_regex": Param(patterns, (), "regexes (re.search) of weight tensor names"),
    }

    num_steps: int | None
    large_threshold: float
    small_threshold: float
    epsilon: float
    collection_names: tuple[str, ...]
    tensor_regex: tuple[str, ...]

    def __init__(self, name: str | None = None, **values: Any) -> None:
        super().__init__(name, **values)
        self.views_by_mode = TRAINING_VIEWS
        self.selection = TensorSelection(self.collection_names, self.tensor_regex)

    def new_state(self) -> _PreviousWeights:
        return _PreviousWeights()

    def observe(self, previous: _PreviousWeights, obs: Observation) -> Finding | None:
        weights = obs.array()
        if weights is None:
            self.skip("no data")
            return None
        if weights.size == 0:  # no weights, no update: nothing to compare, and nothing kept
            self.skip("empty tensor")
            return None
        # Each tensor's norm is taken once, on arrival, and kept for the next step's ratio; the
        # norms are np.linalg.norm's own computation (sqrt of the float64 dot product).
        flat = weights.astype(np.float64, copy=False).ravel()
        with np.errstate(all="ignore"):  # inf - inf and overflow are NaN / inf, not warnings
            norm = math.sqrt(flat.dot(flat))
        prev_step, prev_weights, prev_ts, size = previous.step, previous.weights, previous.ts, previous.norm
        previous.step, previous.weights, previous.ts, previous.norm = obs.step, weights, obs.ts, norm
        if prev_weights is None:
            return None
        if self.num_steps is not None and prev_step < obs.step - self.num_steps:
            return None
        if prev_weights.shape != weights.shape:
            self.skip("shape changed")
            return None
        with np.errstate(all="ignore"):
            change = flat - prev_weights.astype(np.float64, copy=False).ravel()
            update = math.sqrt(change.dot(change))
        denominator = size + self.epsilon
        if update == 0.0:
            ratio = 0.0  # unchanged, even for zero weights with epsilon 0
        elif denominator == 0.0:
            ratio = math.inf if update > 0 else math.nan
        else:
            ratio = update / denominator
        if ratio > self.large_threshold:
            verdict, bound = ">", ("large_threshold", self.large_threshold)
        elif ratio < self.small_threshold:
            verdict, bound = "<", ("small_threshold", self.small_threshold)
        else:
            return None
        return Finding(
            obs.trial, obs.worker, obs.mode, obs.step, (obs.name,),
            f"{obs.name} update ratio {ratio:.6g} {verdict} {bound[0]} {bound[1]:g} "
            f"(steps {prev_step} -> {obs.step})",
            {"tensor": obs.name, "ratio": ratio, "update_norm": update, "weight_norm": size,
             "previous_step": prev_step, bound[0]: bound[1], "epsilon": self.epsilon},
            max(obs.ts, prev_ts))
