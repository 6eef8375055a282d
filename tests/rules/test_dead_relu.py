"""DeadRelu: x > 0 is active, strict thresholds, nodes, NaN, modes, selection, skipped inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.rules.routed import feed
from trainsentry.rules.base import ConfigError
from trainsentry.rules.dead_relu import DeadRelu
from trainsentry.rules.rule_run import RuleRun


def run(**params) -> RuleRun:
    return RuleRun(DeadRelu(**params))


def test_vector_two_of_three_nodes_dead_fires():
    batch = np.ones((4, 3))
    batch[:, :2] = [[-1.0, 0.0], [0.0, -2.0], [-0.5, 0.0], [0.0, 0.0]]
    found = feed(run(), "l1.relu_input", 0, data=batch)
    assert found[0].details["tensors"]["l1.relu_input"]["dead_percent"] == pytest.approx(200 / 3)
    assert found[0].details["tensors"]["l1.relu_input"]["dead_nodes"] == 2


def test_zero_is_not_active_the_smallest_positive_value_is():
    assert feed(run(), "l.relu_output", 0, data=np.zeros((2, 1)))
    assert not feed(run(), "l.relu_output", 0, data=np.full((2, 1), 5e-324))


def test_layer_threshold_is_strict():
    batch = np.ones((3, 4))
    batch[:, :2] = 0.0                       # exactly 50% dead
    assert not feed(run(), "l.relu_input", 0, data=batch)
    assert feed(run(threshold_layer="49.9"), "l.relu_input", 0, data=batch)


def test_inactivity_threshold_is_strict():
    column = np.zeros((100, 1))
    column[0, 0] = 1.0                       # activity exactly 1%: not dead
    assert not feed(run(), "l.relu_input", 0, data=column)
    assert feed(run(threshold_inactivity=1.01), "l.relu_input", 0, data=column)


def test_nan_is_left_out_of_activity_and_an_all_nan_node_is_not_dead():
    column = np.array([[math.nan], [1.0]])    # 1 of 1 non-NaN value active
    assert not feed(run(), "l.relu_input", 0, data=column)
    nodes = np.array([[math.nan, -1.0, -1.0]])  # node 0 all NaN, nodes 1 and 2 dead: 66.7%
    assert feed(run(), "l.relu_input", 0, data=nodes)
    assert not feed(run(), "l.relu_input", 0, data=np.array([[math.nan, -1.0]]))  # 50%


def test_infinities_plus_is_active_minus_is_not():
    assert not feed(run(), "l.relu_input", 0, data=np.full((3, 1), math.inf))
    assert feed(run(), "l.relu_input", 0, data=np.full((3, 1), -math.inf))


def test_one_dimensional_tensor_is_one_node_and_a_scalar_one_sample():
    assert feed(run(), "l.relu_input", 0, data=[-1.0, 0.0, -3.0])
    assert not feed(run(), "l.relu_input", 0, data=[-1.0, 0.0, 3.0])
    assert feed(run(), "l.relu_input", 0, 0.0)


def test_bool_and_integer_tensors():
    assert feed(run(), "l.relu_input", 0, data=np.zeros((2, 2), dtype=bool))
    assert not feed(run(), "l.relu_input", 0, data=np.ones((2, 2), dtype=np.uint8))


def test_default_selection_and_union_with_collections():
    rule = DeadRelu(collection_names="activations")
    assert rule.selects("a.relu_input", ()) and rule.selects("a.relu_output", ())
    assert rule.selects("act", ("activations",)) and not rule.selects("a.tanh_input", ())


def test_empty_and_reductions_only_tensors_are_skipped_and_counted():
    rule_run = run()
    for shape in [(0,), (0, 3), (3, 0)]:
        assert not feed(rule_run, "l.relu_input", 0, data=np.zeros(shape))
    assert not feed(rule_run, "l.relu_input", 1, reductions={"min": -1.0, "max": 0.0})
    assert rule_run.rule.skipped == {"empty tensor": 3, "reductions only": 1}


@pytest.mark.parametrize("mode, evaluated", [("TRAIN", True), ("EVAL", True), ("GLOBAL", True),
                                             ("PREDICT", False)])
def test_modes(mode, evaluated):
    assert bool(feed(run(), "l.relu_input", 0, data=np.zeros((2, 2)), mode=mode)) is evaluated


@pytest.mark.parametrize("param, value", [("threshold_layer", "101"), ("threshold_inactivity", -1)])
def test_percent_parameters_are_checked(param, value):
    with pytest.raises(ConfigError, match=f"DeadRelu.*{param}"):
        DeadRelu(**{param: value})
