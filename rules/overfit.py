"""Overfit: the validation loss rose above the training loss by more than a ratio."""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

from .base import EVAL, TRAIN, Finding, Observation, Param, Rule, View
from .params import integer, names, number, patterns
from .selection import TensorSelection

# The rules comparing a loss's TRAIN values with its EVAL values see exactly those two modes.
TRAIN_AND_EVAL_VIEWS: dict[str, tuple[View, ...]] = {
    "TRAIN": (TRAIN,), "EVAL": (EVAL,), "PREDICT": (), "GLOBAL": ()}


class _Phase:
    """The finite values of one phase (a maximal run of one mode's values) counted so far."""

    __slots__ = ("total", "count", "ts")

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0
        self.ts = -math.inf

    def add(self, value: float, ts: float) -> None:
        self.total += value
        self.count += 1
        self.ts = max(self.ts, ts)

    @property
    def mean(self) -> float:
        return self.total / self.count


class _LossPhases:
    """What one (worker, loss tensor) holds: the current phase, the reference TRAIN phase, the run."""

    __slots__ = ("mode", "phase", "train", "run")

    def __init__(self) -> None:
        self.mode: str | None = None          # the mode of the current phase
        self.phase = _Phase()                 # its counted finite values
        self.train: _Phase | None = None      # the newest TRAIN phase with a counted finite value
        self.run = 0                          # consecutive evaluations above the ratio threshold


class Overfit(Rule[_LossPhases]):
    """Fires when the validation loss exceeds the training loss by more than ``ratio_threshold``.

    docs/rules.md, "Overfit". Per (trial, worker, loss tensor), the TRAIN and EVAL values of that
    tensor in the order the worker wrote them; a phase is a maximal run of its values in one mode.
    Only TRAIN values with ``step >= start_step`` count. At every EVAL value after a TRAIN phase
    with at least one counted finite value::

        train_mean = mean of the finite counted values of the newest such TRAIN phase
        val_mean   = mean of the finite values of the current EVAL phase, up to this one
        ratio      = (val_mean - train_mean) / |train_mean|

    (``train_mean == 0``, or no finite EVAL value yet: no evaluation). Consecutive evaluations
    with ``ratio > ratio_threshold`` (strict) are counted, across phases; an evaluation that does
    not exceed resets the count. It fires at every evaluation where the count ``>= patience``.
    The alert's mode is EVAL and its step the EVAL value's step.

    Inputs: ``collection_names`` (default ``losses``) united with ``tensor_regex``; only
    one-element values (a scalar, or a tensor of one element), others are skipped and counted and
    take no place in the phases. Modes: TRAIN and EVAL values of the tensor (GLOBAL-written and
    PREDICT values are ignored).

    Decisions where the SageMaker documentation is silent: the phases and means above; an
    EVAL value with no evaluation (nothing to compare with) leaves the count as it is; a TRAIN value
    before ``start_step`` still ends the EVAL phase before it; ``patience`` is at least 1.

    Examples
    --------
    The docs/rules.md vector: train 1.0, 1.0; eval 1.05; train 1.0; eval 1.2, 1.3.

    >>> from trainsentry.rules.rule_run import RuleRun
    >>> run = RuleRun(Overfit())
    >>> written = [("TRAIN", 0, 1.0), ("TRAIN", 1, 1.0), ("EVAL", 0, 1.05), ("TRAIN", 2, 1.0),
    ...            ("EVAL", 1, 1.2), ("EVAL", 2, 1.3)]
    >>> for found in run.feed_all(Observation.of("loss", step, value, mode=mode, collections=("losses",))
    ...                           for mode, step, value in written):
    ...     print(found.mode, found.step, found.message)
    EVAL 1 loss overfits: validation mean 1.2 vs training mean 1, ratio 0.2 > 0.1 (1 in a row)
    EVAL 2 loss overfits: validation mean 1.25 vs training mean 1, ratio 0.25 > 0.1 (2 in a row)
    """

    rule_type = "Overfit"
    state_spans_series = True
    params = {
        "collection_names": Param(names, ("losses",), "collections of loss tensors"),
        "tensor_regex": Param(patterns, (), "regexes (re.search) of loss tensor names"),
        "start_step": Param(integer(minimum=0), 0, "TRAIN values before this step do not count"),
        "patience": Param(integer(minimum=1), 1, "consecutive evaluations above the ratio that fire"),
        "ratio_threshold": Param(number(), 0.1, "(val_mean - train_mean) / |train_mean| that fires"),
    }

    collection_names: tuple[str, ...]
    tensor_regex: tuple[str, ...]
    start_step: int
    patience: int
    ratio_threshold: float

    def __init__(self, name: str | None = None, **values: Any) -> None:
        super().__init__(name, **values)
        self.views_by_mode = TRAIN_AND_EVAL_VIEWS
        self.selection = TensorSelection(self.collection_names, self.tensor_regex)

    def state_key(self, obs: Observation) -> Hashable:
        return (obs.series[0], obs.series[2])  # (worker, tensor): TRAIN and EVAL share one state

    def new_state(self) -> _LossPhases:
        return _LossPhases()

    def observe(self, state: _LossPhases, obs: Observation) -> Finding | None:
        value = obs.value
        if value is None:
            self.skip("not one element" if obs.data is not None else "no data")
            return None
        if obs.mode != state.mode:  # a new phase; a TRAIN phase that ends may become the reference
            if state.mode == "TRAIN" and state.phase.count:
                state.train = state.phase
            state.mode, state.phase = obs.mode, _Phase()
        if obs.mode == "TRAIN":
            if obs.step >= self.start_step and math.isfinite(value):
                state.phase.add(value, obs.ts)
            return None
        if math.isfinite(value):
            state.phase.add(value, obs.ts)
        train = state.train
        if train is None or not state.phase.count or train.mean == 0.0:
            return None
        train_mean, val_mean = train.mean, state.phase.mean
        ratio = (val_mean - train_mean) / abs(train_mean)
        if not ratio > self.ratio_threshold:
            state.run = 0
            return None
        state.run += 1
        if state.run < self.patience:
            return None
        return Finding(
            obs.trial, obs.worker, obs.mode, obs.step, (obs.name,),
            f"{obs.name} overfits: validation mean {val_mean:.6g} vs training mean "
            f"{train_mean:.6g}, ratio {ratio:.6g} > {self.ratio_threshold:g} ({state.run} in a row)",
            {"tensor": obs.name, "ratio": ratio, "val_mean": val_mean, "train_mean": train_mean,
             "val_values": state.phase.count, "train_values": train.count,
             "evaluations_above": state.run, "ratio_threshold": self.ratio_threshold,
             "patience": self.patience, "start_step": self.start_step},
            max(obs.ts, state.phase.ts, train.ts))
