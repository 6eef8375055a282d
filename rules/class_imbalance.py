"""ClassImbalance: the labels seen so far are imbalanced, or a class is mostly mispredicted."""

from __future__ import annotations

import re
from collections.abc import Hashable
from typing import Any

import numpy as np

from .base import Finding, Observation, Param, ParamProblem, Rule
from .params import integer, number, parse_bool, patterns

MAX_CLASSES = 100_000  # distinct label values kept per (worker, mode); a pair adding more is skipped
SHOWN_CLASSES = 10     # mispredicted classes listed in an alert's details, worst first


class _Pending:
    """One half of a step's pair: the tensor's name, its elements and its ts."""

    __slots__ = ("name", "values", "ts")

    def __init__(self, name: str, values: np.ndarray, ts: float) -> None:
        self.name, self.values, self.ts = name, values, ts


class _ClassCounts:
    """What one (worker, mode) holds: the current step's pair so far and the counts of every class."""

    __slots__ = ("step", "labels", "predictions", "paired", "classes", "samples")

    def __init__(self) -> None:
        self.step = -1
        self.labels: _Pending | None = None
        self.predictions: _Pending | None = None
        self.paired = False                        # the current step's pair was taken
        self.classes: dict[float, list[int]] = {}  # class (truncated) -> [labelled, mispredicted]
        self.samples = 0                           # labels counted


class ClassImbalance(Rule[_ClassCounts]):
    """Fires when the class counts are imbalanced or a class is mostly mispredicted.

    docs/rules.md, "ClassImbalance". Per (trial, worker, mode), the labels and predictions tensors
    of the same step are paired: the first tensor of the step whose name matches ``labels_regex``
    and the first matching ``predictions_regex``. Labels are class ids (float values truncated toward
    zero); predictions are class ids the same way, or with ``argmax`` scores whose last axis is the
    class. Counts accumulate over every step of the series; once at least ``samples`` labels have
    been counted, every step whose pair was counted is evaluated::

        imbalance         = max(count) / min(count)   over the classes seen in the labels
        misprediction(c)  = (samples labelled c predicted otherwise) / (samples labelled c)
        fires  iff  imbalance > threshold_imbalance  or  any misprediction(c) > threshold_misprediction

    A pair is skipped and counted when its element counts differ, when a label (or, without
    ``argmax``, a prediction) is NaN or infinite, or when a score is NaN.

    Modes: EVAL and TRAIN independently, GLOBAL-written events as their own series, PREDICT never
    (the shared mode choice: the rule has no ``mode`` parameter).

    Decisions where the SageMaker documentation is silent: a name matching both regexes is taken as
    labels; a tensor of a step whose pair is already taken, or of an earlier step, is skipped and
    counted, as is a half pair whose other half never came before the next step; a tensor sent with
    only ``reductions`` or with no elements is skipped and counted and is not the step's "first";
    with ``argmax`` an infinite score is an ordinary value and scores need a class axis (a 0-d or
    zero-class tensor is skipped); a pair that would bring the classes of a series beyond
    :data:`MAX_CLASSES` is skipped and counted; ``threshold_misprediction`` is a fraction in [0, 1],
    ``threshold_imbalance`` at least 1 and ``samples`` at least 1.

    Examples
    --------
    The docs/rules.md vector: 990 labels 0 and 10 labels 1, predicted exactly.

    >>> from trainsentry.rules.rule_run import RuleRun
    >>> labels = np.array([0] * 990 + [1] * 10)
    >>> run = RuleRun(ClassImbalance())
    >>> run.feed(Observation.of("labels", 0, data=labels)) is None
    True
    >>> print(run.feed(Observation.of("predictions", 0, data=labels)).message)
    class imbalance 99 > 10 over 1000 samples (class 0: 990, class 1: 10)
    """

    rule_type = "ClassImbalance"
    state_spans_series = True
    params = {
        "threshold_imbalance": Param(number(at_least=1), 10.0, "max/min class count that fires"),
        "threshold_misprediction": Param(number(at_least=0, at_most=1), 0.7,
                                         "fraction of a class mispredicted that fires"),
        "samples": Param(integer(minimum=1), 500, "labels counted before the first evaluation"),
        "argmax": Param(parse_bool, False, "predictions are scores: the class is their argmax"),
        "labels_regex": Param(patterns, (".*labels",), "regexes (re.search) of the labels tensor"),
        "predictions_regex": Param(patterns, (".*predictions",),
                                   "regexes (re.search) of the predictions tensor"),
    }

    threshold_imbalance: float
    threshold_misprediction: float
    samples: int
    argmax: bool
    labels_regex: tuple[str, ...]
    predictions_regex: tuple[str, ...]

    @classmethod
    def finish_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        for key in ("labels_regex", "predictions_regex"):
            if not values[key]:
                raise ParamProblem(key, "must give at least one regex")
        return values

    def __init__(self, name: str | None = None, **values: Any) -> None:
        super().__init__(name, **values)
        self._labels = tuple(re.compile(p) for p in self.labels_regex)
        self._predictions = tuple(re.compile(p) for p in self.predictions_regex)

    def selection_hint(self) -> str:
        return ("it reads names matching " + ", ".join(self.labels_regex) + " and "
                + ", ".join(self.predictions_regex) + "; set labels_regex and predictions_regex")

    def selects(self, name: str, collections: tuple[str, ...]) -> bool:
        return any(p.search(name) for p in self._labels + self._predictions)

    def state_key(self, obs: Observation) -> Hashable:
        return obs.series[:2]  # (worker, view): labels and predictions of a step are paired

    def new_state(self) -> _ClassCounts:
        return _ClassCounts()

    def observe(self, state: _ClassCounts, obs: Observation) -> Finding | None:
        role = "labels" if any(p.search(obs.name) for p in self._labels) else "predictions"
        if obs.step < state.step:
            self.skip(f"{role} of an earlier step")
            return None
        if obs.step > state.step:
            if not state.paired and (state.labels or state.predictions):
                self.skip("labels or predictions without the other at their step")
            state.step, state.labels, state.predictions, state.paired = obs.step, None, None, False
        if state.paired or getattr(state, role) is not None:
            self.skip(f"not the first {role} of its step")
            return None
        values = obs.array()
        if values is None or values.size == 0:
            self.skip("empty tensor" if values is not None
                      else "reductions only" if obs.reductions is not None else "no data")
            return None
        setattr(state, role, _Pending(obs.name, values, obs.ts))
        if state.labels is None or state.predictions is None:
            return None
        labels, predictions = state.labels, state.predictions
        state.labels = state.predictions = None  # the arrays are not needed past this step
        state.paired = True
        if not self._count(state, labels.values, predictions.values):
            return None
        if state.samples < self.samples:
            return None
        return self._evaluate(state, obs, labels, predictions)

    def _count(self, state: _ClassCounts, labels: np.ndarray, scores: np.ndarray) -> bool:
        """Add one pair to the counts; False (skipped and counted) when it cannot be used."""
        truth = labels.astype(np.float64, copy=False).ravel()
        if not np.isfinite(truth).all():
            self.skip("non-finite label")
            return False
        if self.argmax:
            if scores.ndim == 0 or scores.shape[-1] == 0:
                self.skip("predictions without a class axis")
                return False
            scores = scores.reshape(-1, scores.shape[-1])
            if scores.dtype.kind == "f" and np.isnan(scores).any():
                self.skip("NaN score")
                return False
            guess = scores.argmax(axis=-1).astype(np.float64)
        else:
            guess = scores.astype(np.float64, copy=False).ravel()
            if not np.isfinite(guess).all():
                self.skip("non-finite prediction")
                return False
        if guess.size != truth.size:
            self.skip("labels and predictions of different sizes")
            return False
        truth, guess = np.trunc(truth), np.trunc(guess)
        seen, counts = np.unique(truth, return_counts=True)
        new = sum(1 for c in seen.tolist() if c not in state.classes)
        if len(state.classes) + new > MAX_CLASSES:
            self.skip(f"more than {MAX_CLASSES} classes")
            return False
        wrong_classes, wrong_counts = np.unique(truth[truth != guess], return_counts=True)
        for label, count in zip(seen.tolist(), counts.tolist(), strict=True):
            state.classes.setdefault(label, [0, 0])[0] += count
        for label, count in zip(wrong_classes.tolist(), wrong_counts.tolist(), strict=True):
            state.classes[label][1] += count
        state.samples += int(truth.size)
        return True

    def _evaluate(self, state: _ClassCounts, obs: Observation, labels: _Pending,
                  predictions: _Pending) -> Finding | None:
        classes = state.classes
        most = max(classes, key=lambda c: classes[c][0])
        least = min(classes, key=lambda c: classes[c][0])
        imbalance = classes[most][0] / classes[least][0]
        wrong = {c: n_wrong / n for c, (n, n_wrong) in classes.items()
                 if n_wrong / n > self.threshold_misprediction}
        imbalanced = imbalance > self.threshold_imbalance
        if not imbalanced and not wrong:
            return None
        worst = sorted(wrong, key=lambda c: (-wrong[c], c))[:SHOWN_CLASSES]
        said = []
        if imbalanced:
            said.append(f"class imbalance {imbalance:.6g} > {self.threshold_imbalance:g} over "
                        f"{state.samples} samples (class {_shown(most)}: {classes[most][0]}, "
                        f"class {_shown(least)}: {classes[least][0]})")
        if wrong:
            said.append(f"{len(wrong)} classes mispredicted > {self.threshold_misprediction:g} "
                        f"(class {_shown(worst[0])}: {wrong[worst[0]]:.3g})")
        return Finding(
            obs.trial, obs.worker, obs.mode, obs.step, (labels.name, predictions.name),
            "; ".join(said),
            {"samples": state.samples, "classes": len(classes), "imbalance": imbalance,
             "most_frequent": {"class": _shown(most), "count": classes[most][0]},
             "least_frequent": {"class": _shown(least), "count": classes[least][0]},
             "mispredicted": {str(_shown(c)): wrong[c] for c in worst},
             "mispredicted_classes": len(wrong),
             "threshold_imbalance": self.threshold_imbalance,
             "threshold_misprediction": self.threshold_misprediction},
            max(labels.ts, predictions.ts))


def _shown(label: float) -> int | float:
    """A class id as alerts show it: an int when it fits in 64 bits (every sane label does)."""
    return int(label) if abs(label) < 2.0**63 else label
