"""No rule raises on any tensor the protocol accepts: every dtype, any shape, NaN and Inf.

The sidecar runs every rule on whatever a training job sends; one exception would stop it. Each
tensor below is routed to every built-in rule (its name and collections select it for all of them),
with numpy's floating-point warnings turned into errors so that NaN/Inf arithmetic is handled, not
merely tolerated.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.rules.events import alerts, tensor
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.state import deep_size
from trainsentry.protocol import DTYPES
from trainsentry.rules.base import Observation
from trainsentry.rules.config import Config
from trainsentry.rules.poor_weight_initialization import PoorWeightInitialization
from trainsentry.rules.rule_run import RuleRun
from trainsentry.rules.weight_update_ratio import WeightUpdateRatio

# Selected by every built-in rule: SaturatedActivation (tanh_input), PoorWeightInitialization
# (relu_input, gradients, losses), WeightUpdateRatio (weights), LossNotDecreasing (losses).
NAMES = ("l.relu_input.tanh_input", "l.sigmoid_input", "loss")
EVERY_COLLECTION = ("weights", "gradients", "losses")
SPECIAL = (math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, -1.0, 1e300, -1e300, 5e-324, 20.0)

shapes = st.lists(st.integers(min_value=0, max_value=3), min_size=0, max_size=4).map(tuple)


@st.composite
def arrays(draw):
    dtype = np.dtype(draw(st.sampled_from(sorted(DTYPES))))
    shape = draw(shapes)
    size = math.prod(shape)
    if dtype.kind == "f":
        with np.errstate(over="ignore"):  # 1e300 in float16/32 is inf: also a value to send
            pool = np.array(SPECIAL).astype(dtype)
    elif dtype.kind == "b":
        pool = np.array([False, True])
    else:
        info = np.iinfo(dtype)
        pool = np.array([info.min, info.max, 0, 1], dtype=dtype)
    picks = draw(st.lists(st.integers(0, len(pool) - 1), min_size=size, max_size=size))
    return pool[np.array(picks, dtype=np.intp)].reshape(shape) if size else np.zeros(shape, dtype)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NAMES), arrays()), min_size=1, max_size=14))
def test_no_rule_raises_on_any_protocol_tensor(sent):
    events = [tensor(name, step, array, collections=EVERY_COLLECTION)
              for step, (name, array) in enumerate(sent)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        alerts(Engine(Config.default()), events)
        # and each rule on its own, as Observation.of builds it (0-d and 1-element included)
        for rule in Config.default().rules:  # the rules that run on their defaults
            run = RuleRun(rule.build())
            for step, (name, array) in enumerate(sent):
                run.feed(Observation.of(name, step, data=array, collections=EVERY_COLLECTION))


@pytest.mark.parametrize("shape", [(0,), (0, 16), (16, 0)])
def test_weight_update_ratio_skips_empty_tensors_and_keeps_nothing_for_them(shape):
    rule = WeightUpdateRatio()
    run = RuleRun(rule)
    empty = np.zeros(shape, dtype=np.float32)
    for step in range(3):  # an empty tensor has no update: it must not fire as "too small"
        assert run.feed(Observation.of("fc.weight", step, data=empty)) is None
    assert rule.skipped == {"empty tensor": 3}
    # its state is still the one of a series never seen: no tensor kept
    assert [deep_size(state) for state in run.states.values()] == [deep_size(rule.new_state())]


@pytest.mark.parametrize("shape", [(0,), (0, 16), (16, 0)])
def test_poor_weight_initialization_skips_empty_activations_and_gradients(shape):
    rule = PoorWeightInitialization()
    run = RuleRun(rule)
    empty = np.zeros(shape)
    assert run.feed(Observation.of("l1.relu_input", 0, data=[1.0, -1.0])) is None
    assert run.feed(Observation.of("l2.relu_input", 0, data=empty)) is None
    assert run.feed(Observation.of("g", 0, data=empty, collections=("gradients",))) is None
    assert rule.skipped == {"empty tensor": 2}
