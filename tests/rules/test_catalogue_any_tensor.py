"""No registered rule raises on any input the protocol accepts: every dtype, shape and mode.

The sidecar runs every rule on whatever a training job sends; one exception would stop it. Every
rule of the registry, and a sample rule written by a user (examples/gradient_spike.py), is fed,
as the engine routes events, tensors of every protocol dtype and of any shape (zero-size
included) holding NaN, infinities and extremes, scalars, and tensors sent with only
``reductions`` (any subset, any values), in every written mode, with numpy's
floating-point warnings turned into errors so that NaN/Inf arithmetic is handled, not merely
tolerated. Each rule runs in the variants of its parameters that reach its code paths.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.rules.routed import feed
from trainsentry.protocol import DTYPES
from trainsentry.rules.base import MODES
from trainsentry.rules.registry import RULES, build_rule
from trainsentry.rules.rule_run import RuleRun
from trainsentry.rules.user_rules import load_rule_class

# Selected by every rule: ReLU/tanh/sigmoid inputs, losses, gradients, weights, labels, predictions.
NAMES = ("l.relu_input.tanh_input", "l.sigmoid_input", "loss", "y.labels", "y.predictions")
EVERY_COLLECTION = ("weights", "gradients", "losses", "metrics")
SPECIAL = (math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, 2.0, 1e300, -1e300, 5e-324, 20.0,
           1.2e154)
REDUCTIONS = ("min", "max", "mean", "std", "variance", "l1", "l2", "count", "nan_count")

# Parameters that make a rule evaluate early and often; rules not listed run on their defaults.
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "LossNotDecreasing": [{}, {"num_steps": 1, "diff_percent": 10}],
    "WeightUpdateRatio": [{}, {"num_steps": 2, "epsilon": 0}],
    "PoorWeightInitialization": [{}, {"patience": 1}],
    "ExplodingTensor": [{}, {"only_nan": True}],
    "UnchangedTensor": [{"tensor_regex": "."}, {"tensor_regex": ".", "num_steps": 2,
                                                "equal_nan": True, "rtol": 0, "atol": 0}],
    "AllZero": [{"tensor_regex": "."}, {"tensor_regex": ".", "threshold": 0}],
    "TensorVariance": [{"tensor_regex": ".", "max_threshold": 1.0},
                       {"tensor_regex": ".", "min_threshold": 1e-3, "max_threshold": 1e300}],
    "Overfit": [{}, {"ratio_threshold": -1e300, "patience": 2, "start_step": 1}],
    "Overtraining": [{"patience_train": 1, "patience_validation": 1, "delta": 0}],
    "ClassImbalance": [{"samples": 1}, {"samples": 1, "argmax": True, "threshold_imbalance": 1,
                                        "threshold_misprediction": 0}],
}

# A rule written by users runs beside the built-in ones: the README's example.
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def user_rule_runs() -> list[RuleRun]:
    if str(EXAMPLES) not in sys.path:
        sys.path.append(str(EXAMPLES))
    spike = load_rule_class("gradient_spike:GradientSpike", "spike")
    return [RuleRun(spike("spike", collection_names="gradients, weights, losses", window=1,
                          factor=1.01))]


shapes = st.lists(st.integers(min_value=0, max_value=3), min_size=0, max_size=4).map(tuple)


@st.composite
def arrays(draw, shape: tuple[int, ...] | None = None) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(sorted(DTYPES))))
    shape = draw(shapes) if shape is None else shape
    size = math.prod(shape)
    if dtype.kind == "f":
        with np.errstate(over="ignore"):  # 1e300 in float16/32 is inf: also a value to send
            pool = np.array(SPECIAL).astype(dtype)
    elif dtype.kind == "b":
        pool = np.array([False, True])
    else:
        info = np.iinfo(dtype)
        pool = np.array([info.min, info.max, 0, 1, 2], dtype=dtype)
    picks = draw(st.lists(st.integers(0, len(pool) - 1), min_size=size, max_size=size))
    array = pool[np.array(picks, dtype=np.intp)].reshape(shape) if size else np.zeros(shape, dtype)
    array.flags.writeable = False  # as the engine hands event data to rules
    return array


@st.composite
def labelled(draw) -> list[tuple[str, tuple[str, Any]]]:
    """A step's labels and its predictions: class ids of the labels' shape, or scores with a class axis."""
    labels = draw(arrays())
    classes = draw(st.integers(0, 3))
    shape = labels.shape + (classes,) if draw(st.booleans()) else labels.shape
    return [("y.labels", ("data", labels)), ("y.predictions", ("data", draw(arrays(shape))))]


reductions = st.dictionaries(st.sampled_from(REDUCTIONS), st.sampled_from(SPECIAL + (4.0, -3.0)))
payloads = st.one_of(arrays().map(lambda a: ("data", a)), reductions.map(lambda r: ("reductions", r)),
                     st.sampled_from(SPECIAL).map(lambda v: ("value", v)))
losses = st.one_of(st.sampled_from(SPECIAL), st.floats(0.5, 2.0)).map(lambda v: [("loss", ("value", v))])

# one written step of some tensors: (written mode, step increment, [(name, what it carries)]);
# losses and labelled pairs are drawn often so that the rules spanning several series fire too
events = st.tuples(
    st.sampled_from(MODES + ("TRAIN", "EVAL")), st.integers(0, 1),
    st.one_of(st.tuples(st.sampled_from(NAMES), payloads).map(lambda one: [one]), losses,
              labelled()))


def test_every_registered_rule_has_variants_that_load():
    for rule_type in RULES:
        for params in VARIANTS.get(rule_type, [{}]):
            build_rule(rule_type, rule_type, params)


@settings(max_examples=300, deadline=None)
@given(st.lists(events, min_size=1, max_size=24))
def test_no_rule_raises_on_any_protocol_input(sent):
    runs = [RuleRun(build_rule(rule_type, rule_type, params))
            for rule_type in RULES for params in VARIANTS.get(rule_type, [{}])] + user_rule_runs()
    step = {mode: 0 for mode in MODES}
    last: dict[tuple[str, str], int] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for mode, increment, tensors in sent:
            step[mode] += increment
            for name, (kind, payload) in tensors:
                # a series' step at or below its last one never reaches a rule (the engine drops it)
                if last.get((name, mode), -1) >= step[mode]:
                    continue
                last[(name, mode)] = step[mode]
                carried = {"value" if kind == "value" else kind: payload}
                for run in runs:
                    feed(run, name, step[mode], mode=mode, collections=EVERY_COLLECTION, **carried)
