"""PoorWeightInitialization: signs of a bad initialisation in the first ``steps`` steps."""

from __future__ import annotations

import math
import re
from collections.abc import Hashable
from typing import Any

import numpy as np

from .base import TRAINING_VIEWS, Finding, Observation, Param, Rule
from .params import integer, number, patterns


class _VarianceSpread:
    """The smallest and largest activation-input variance seen at the newest step of a group."""

    __slots__ = ("step", "layers", "low", "low_name", "high", "high_name", "ts")

    def __init__(self, step: int) -> None:
        self.step = step
        self.layers = 0
        self.low = self.high = math.nan
        self.low_name = self.high_name = ""
        self.ts = -math.inf

    def add(self, name: str, variance: float, ts: float) -> None:
        self.layers += 1
        self.ts = max(self.ts, ts)
        if not variance >= self.low:  # also true for the first layer (low is NaN)
            self.low, self.low_name = variance, name
        if not variance <= self.high:
            self.high, self.high_name = variance, name

    def ratio(self) -> float:
        """max/min variance; a zero min gives inf with a positive max and NaN (no fire) for 0/0."""
        if self.low == 0.0:
            return math.inf if self.high > 0.0 else math.nan
        return self.high / self.low


class _Stagnation:
    """The best loss so far and how many saved steps since then were not strictly below it."""

    __slots__ = ("best", "run")

    def __init__(self, first: float) -> None:
        self.best = first
        self.run = 0


class _Group:
    """What one (worker, view) of a trial holds while its steps are analysed."""

    __slots__ = ("spread", "passed", "losses")

    def __init__(self) -> None:
        self.spread: _VarianceSpread | None = None  # the newest step's variance extremes
        # Set once an activation input reaches ``steps``: the variance state is released, and an
        # activation input of an earlier step arriving later is left out like any older one.
        self.passed = False
        # loss name -> its best and stale run; None once empty (an emptied dict keeps its size)
        self.losses: dict[str, _Stagnation] | None = None


class PoorWeightInitialization(Rule[_Group]):
    """Fires at a step ``s < steps`` when any of three initialisation checks holds.

    docs/rules.md, "PoorWeightInitialization". At step ``s`` of a (trial, worker, mode):

    1. variance spread: over at least two activation inputs (names matching
       ``activation_inputs_regex``) at ``s``, ``max(variance) / min(variance) > threshold``, the
       variance over all elements (data, or the writer's ``variance`` reduction); a zero minimum with
       a positive maximum is an infinite ratio, all zero is 0/0 and does not fire;
    2. gradient spread: a tensor of the ``gradients`` collection at ``s`` has
       ``percentile95 - percentile5 < distribution_range`` (linear interpolation);
    3. loss stagnation: a series of the ``losses`` collection has had ``patience`` or more
       consecutive saved steps, up to and including ``s``, none strictly below the best value before
       them (it fires at every analysed step where that holds).

    A variance or percentile that is NaN is left out; a NaN loss is skipped by check 3. Only the
    TRAIN series and the series written with mode GLOBAL are analysed. As every check only turns
    from "no" to "yes" while tensors of a step arrive, each arriving tensor is checked at once. The
    variance check compares the tensors of the group's newest step; an activation input of an older
    step (a writer interleaving steps across tensors) is left out of it and counted.

    State: the best loss of each loss series and the variance extremes of each group's newest step,
    both released once past ``steps`` (a loss series at its first step ``>= steps``, a group when
    one of its activation inputs reaches ``steps``; the group then keeps only a marker that it is
    done, and a later activation input of an earlier step is left out and counted). A tensor with
    no elements has no variance or percentile: it is skipped and counted ("empty tensor").

    Where this rule departs from SageMaker's documentation: the documentation leaves the minimum
    number of layers, 0/0, NaN, the percentile method, modes and the meaning of "patience" open; the
    choices above are this project's (patience counted in saved steps).

    Examples
    --------
    >>> from trainsentry.rules.rule_run import RuleRun
    >>> run = RuleRun(PoorWeightInitialization())
    >>> run.feed(Observation.of("l1.relu_input", 0, data=[1.0, -1.0])) is None
    True
    >>> print(run.feed(Observation.of("l2.relu_input", 0, data=[0.1, -0.1])).message)
    poor initialisation at step 0: activation variance spread 100 > 10 (l1.relu_input / l2.relu_input)
    >>> flat = np.zeros(100)
    >>> run.feed(Observation.of("fc.weight.grad", 1, data=flat, collections=("gradients",))).details["checks"]
    {'gradient_spread': {'tensor': 'fc.weight.grad', 'spread': 0.0, 'distribution_range': 0.001}}
    """

    rule_type = "PoorWeightInitialization"
    state_spans_series = True
    params = {
        "activation_inputs_regex": Param(patterns, (".*relu_input",),
                                         "regexes (re.search) of activation input names"),
        "threshold": Param(number(), 10.0, "max/min activation variance ratio that fires"),
        "distribution_range": Param(number(), 0.001, "gradient p95 - p5 below which it fires"),
        "patience": Param(integer(minimum=1), 5, "saved steps without a new best loss that fire"),
        "steps": Param(integer(minimum=0), 10, "only steps below this are analysed"),
    }

    activation_inputs_regex: tuple[str, ...]
    threshold: float
    distribution_range: float
    patience: int
    steps: int

    _NAME_CACHE_LIMIT = 10_000

    def __init__(self, name: str | None = None, **values: Any) -> None:
        super().__init__(name, **values)
        self.views_by_mode = TRAINING_VIEWS
        self._activation = tuple(re.compile(p) for p in self.activation_inputs_regex)
        self._is_activation: dict[str, bool] = {}

    def _activation_input(self, name: str) -> bool:
        known = self._is_activation.get(name)
        if known is None:
            if len(self._is_activation) >= self._NAME_CACHE_LIMIT:
                self._is_activation.clear()
            known = self._is_activation[name] = any(p.search(name) for p in self._activation)
        return known

    def selection_hint(self) -> str:
        return ("it reads names matching " + ", ".join(self.activation_inputs_regex)
                + " and the collections gradients and losses; set activation_inputs_regex")

    def selects(self, name: str, collections: tuple[str, ...]) -> bool:
        return ("gradients" in collections or "losses" in collections
                or self._activation_input(name))

    def state_key(self, obs: Observation) -> Hashable:
        return obs.series[:2]  # (worker, view): the three checks compare the tensors of a step

    def new_state(self) -> _Group:
        return _Group()

    def observe(self, group: _Group, obs: Observation) -> Finding | None:
        if obs.step >= self.steps:
            self._release(group, obs)
            return None
        checks: dict[str, dict[str, Any]] = {}
        ts = obs.ts
        if self._activation_input(obs.name):
            spread = self._variance_spread(group, obs)
            if spread is not None:
                checks["variance_spread"] = spread
                ts = max(ts, spread.pop("ts"))
        if "gradients" in obs.collections:
            gradient = self._gradient_spread(obs)
            if gradient is not None:
                checks["gradient_spread"] = gradient
        if "losses" in obs.collections:
            stagnation = self._loss_stagnation(group, obs)
            if stagnation is not None:
                checks["loss_stagnation"] = stagnation
        if not checks:
            return None
        return Finding(obs.trial, obs.worker, obs.mode, obs.step, _tensors(checks),
                       f"poor initialisation at step {obs.step}: " + "; ".join(
                           _describe(kind, numbers) for kind, numbers in checks.items()),
                       {"checks": checks}, ts)

    def _release(self, group: _Group, obs: Observation) -> None:
        """Drop what ``obs``'s series and group hold once they are past the analysed steps.

        A loss series is ordered (the engine passes only newer steps), so from its first step
        ``>= steps`` on it can never fire again: its state goes. The variance state of a group goes
        when one of its activation inputs reaches ``steps``; only a marker that the group is done is
        kept, so that a straggler of an earlier step is not taken for a new step of the group.
        """
        losses = group.losses
        if losses is not None and losses.pop(obs.name, None) is not None and not losses:
            group.losses = None
        if self._activation_input(obs.name):
            group.passed, group.spread = True, None

    def _variance_spread(self, group: _Group, obs: Observation) -> dict[str, Any] | None:
        values = obs.array()
        if values is not None:
            if values.size == 0:
                self.skip("empty tensor")
                return None
            with np.errstate(all="ignore"):  # inf - inf is NaN, left out below
                variance = float(np.var(values, dtype=np.float64))
        elif obs.reductions is not None and "variance" in obs.reductions:
            variance = float(obs.reductions["variance"])
        else:
            self.skip("no data or variance")
            return None
        if math.isnan(variance):
            return None
        if group.passed:
            self.skip("activation input of an earlier step")
            return None
        spread = group.spread
        if spread is None or obs.step > spread.step:
            spread = group.spread = _VarianceSpread(obs.step)
        elif obs.step < spread.step:
            self.skip("activation input of an earlier step")
            return None
        spread.add(obs.name, variance, obs.ts)
        ratio = spread.ratio()
        if spread.layers < 2 or not ratio > self.threshold:
            return None
        return {"ratio": ratio, "max_variance": spread.high, "max_layer": spread.high_name,
                "min_variance": spread.low, "min_layer": spread.low_name,
                "layers": spread.layers, "threshold": self.threshold, "ts": spread.ts}

    def _gradient_spread(self, obs: Observation) -> dict[str, Any] | None:
        values = obs.array()
        if values is None:
            self.skip("no data")
            return None
        if values.size == 0:
            self.skip("empty tensor")
            return None
        with np.errstate(all="ignore"):  # inf - inf is NaN, left out below
            low, high = np.percentile(values.astype(np.float64, copy=False).ravel(), [5.0, 95.0])
        spread = float(high - low)
        if not spread < self.distribution_range:  # NaN is left out
            return None
        return {"tensor": obs.name, "spread": spread, "distribution_range": self.distribution_range}

    def _loss_stagnation(self, group: _Group, obs: Observation) -> dict[str, Any] | None:
        loss = obs.value
        if loss is None:
            self.skip("loss not one element" if obs.data is not None else "no data")
            return None
        if math.isnan(loss):
            return None
        losses = group.losses
        if losses is None:
            losses = group.losses = {}
        state = losses.get(obs.name)
        if state is None:
            losses[obs.name] = _Stagnation(loss)
            return None
        if loss < state.best:
            state.best, state.run = loss, 0
            return None
        state.run += 1
        if state.run < self.patience:
            return None
        return {"tensor": obs.name, "steps_without_improvement": state.run, "best": state.best,
                "value": loss, "patience": self.patience}


def _tensors(checks: dict[str, dict[str, Any]]) -> tuple[str, ...]:
    names: list[str] = []
    for numbers in checks.values():
        for key in ("max_layer", "min_layer", "tensor"):
            if key in numbers and numbers[key] not in names:
                names.append(numbers[key])
    return tuple(names)


def _describe(kind: str, n: dict[str, Any]) -> str:
    if kind == "variance_spread":
        return (f"activation variance spread {n['ratio']:.6g} > {n['threshold']:g} "
                f"({n['max_layer']} / {n['min_layer']})")
    if kind == "gradient_spread":
        return (f"gradient {n['tensor']} p95-p5 {n['spread']:.6g} "
                f"< {n['distribution_range']:g}")
    return (f"loss {n['tensor']} not below its best {n['best']:.6g} for "
            f"{n['steps_without_improvement']} saved steps (patience {n['patience']})")
