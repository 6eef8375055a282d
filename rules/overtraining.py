"""Overtraining: neither the training nor the validation loss improves any more."""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

from .base import Finding, Observation, Param, Rule
from .overfit import TRAIN_AND_EVAL_VIEWS
from .params import integer, names, number, patterns
from .selection import TensorSelection


class _Progress:
    """One mode's best finite value of a loss and the values since it last improved."""

    __slots__ = ("best", "stale", "best_step")

    def __init__(self) -> None:
        self.best: float | None = None
        self.best_step: int | None = None
        self.stale = 0


class _LossProgress:
    """What one (worker, loss tensor) holds: the progress of its TRAIN and of its EVAL values."""

    __slots__ = ("modes", "ts")

    def __init__(self) -> None:
        self.modes = {"TRAIN": _Progress(), "EVAL": _Progress()}
        self.ts = -math.inf  # the newest value's ts, either mode


class Overtraining(Rule[_LossProgress]):
    """Fires when both the TRAIN and the EVAL loss have stopped improving.

    docs/rules.md, "Overtraining". Per (trial, worker, loss tensor) and per mode TRAIN and EVAL:
    the best (lowest) finite value so far; a value improves when::

        value < best - delta          (the first finite value sets the best and improves)

    ``stale(mode)`` is the number of that mode's values since its last improvement (a NaN or
    infinite value counts as a value that does not improve). At a value of either mode it fires
    iff ``stale(TRAIN) >= patience_train`` and ``stale(EVAL) >= patience_validation``; the alert's
    mode and step are that value's, and it fires at every such value. A run without EVAL values
    never fires.

    Inputs: ``collection_names`` (default ``losses``) united with ``tensor_regex``; only
    one-element values (a scalar, or a tensor of one element), others are skipped and counted.
    Modes: the TRAIN and EVAL values of the tensor (GLOBAL-written and PREDICT values are ignored).

    Decisions where the SageMaker documentation is silent: non-finite values never improve and
    never become the best (-Inf included); values before the first finite one count as stale;
    both patiences are at least 1 (0 would fire on a run without EVAL values).

    Examples
    --------
    >>> from trainsentry.rules.rule_run import RuleRun
    >>> run = RuleRun(Overtraining(patience_train="2", patience_validation="1", delta="0.01"))
    >>> written = [("TRAIN", 0, 1.0), ("EVAL", 0, 1.2), ("TRAIN", 1, 0.995), ("EVAL", 1, 1.2),
    ...            ("TRAIN", 2, 0.999)]
    >>> for found in run.feed_all(Observation.of("loss", step, value, mode=mode, collections=("losses",))
    ...                           for mode, step, value in written):
    ...     print(found.mode, found.step, found.message)
    TRAIN 2 loss stopped improving: 2 TRAIN values (patience 2) and 1 EVAL values (patience 1) not below best - 0.01
    """

    rule_type = "Overtraining"
    state_spans_series = True
    params = {
        "collection_names": Param(names, ("losses",), "collections of loss tensors"),
        "tensor_regex": Param(patterns, (), "regexes (re.search) of loss tensor names"),
        "patience_train": Param(integer(minimum=1), 5, "TRAIN values without improvement"),
        "patience_validation": Param(integer(minimum=1), 10, "EVAL values without improvement"),
        "delta": Param(number(at_least=0), 0.01, "improvement: a value below best - delta"),
    }

    collection_names: tuple[str, ...]
    tensor_regex: tuple[str, ...]
    patience_train: int
    patience_validation: int
    delta: float

    def __init__(self, name: str | None = None, **values: Any) -> None:
        super().__init__(name, **values)
        self.views_by_mode = TRAIN_AND_EVAL_VIEWS
        self.selection = TensorSelection(self.collection_names, self.tensor_regex)

    def state_key(self, obs: Observation) -> Hashable:
        return (obs.series[0], obs.series[2])  # (worker, tensor): TRAIN and EVAL share one state

    def new_state(self) -> _LossProgress:
        return _LossProgress()

    def observe(self, state: _LossProgress, obs: Observation) -> Finding | None:
        value = obs.value
        if value is None:
            self.skip("not one element" if obs.data is not None else "no data")
            return None
        state.ts = max(state.ts, obs.ts)
        progress = state.modes[obs.mode]
        if math.isfinite(value) and (progress.best is None or value < progress.best - self.delta):
            progress.best, progress.best_step, progress.stale = value, obs.step, 0
        else:
            progress.stale += 1
        train, evaluation = state.modes["TRAIN"], state.modes["EVAL"]
        if train.stale < self.patience_train or evaluation.stale < self.patience_validation:
            return None
        return Finding(
            obs.trial, obs.worker, obs.mode, obs.step, (obs.name,),
            f"{obs.name} stopped improving: {train.stale} TRAIN values (patience "
            f"{self.patience_train}) and {evaluation.stale} EVAL values (patience "
            f"{self.patience_validation}) not below best - {self.delta:g}",
            {"tensor": obs.name, "value": value,
             "train": {"best": train.best, "best_step": train.best_step, "stale": train.stale},
             "eval": {"best": evaluation.best, "best_step": evaluation.best_step,
                      "stale": evaluation.stale},
             "patience_train": self.patience_train,
             "patience_validation": self.patience_validation, "delta": self.delta},
            state.ts)
