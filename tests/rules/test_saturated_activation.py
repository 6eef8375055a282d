"""SaturatedActivation: strict thresholds, tanh vs sigmoid, NaN and Inf, nodes, modes, parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.rules.events import alerts, engine_for, steps, tensor
from trainsentry.rules.base import ConfigError, Observation
from trainsentry.rules.rule_run import RuleRun
from trainsentry.rules.saturated_activation import SaturatedActivation


def observe(rule, name, data, step=0):
    return RuleRun(rule).feed(Observation.of(name, step, data=np.asarray(data, dtype=np.float64)))


@pytest.mark.parametrize("value, saturated", [(9.4999, True), (-9.4999, True), (9.4998, False),
                                              (-9.4998, False), (math.inf, True), (-math.inf, True)])
def test_tanh_bounds_are_strict(value, saturated):
    finding = observe(SaturatedActivation(), "l.tanh_input", np.full((4, 1), value))
    assert (finding is not None) is saturated


@pytest.mark.parametrize("value, saturated", [(-23.0, True), (-22.9999, False), (16.99999, True),
                                              (16.99998, False), (12.0, False)])
def test_sigmoid_bounds_are_strict_and_differ_from_tanh(value, saturated):
    finding = observe(SaturatedActivation(), "l.sigmoid_input", np.full((4, 1), value))
    assert (finding is not None) is saturated


def test_name_decides_tanh_or_sigmoid_other_names_are_skipped():
    rule = SaturatedActivation(collection_names="activations")
    assert observe(rule, "l.relu_input", np.full((2, 2), 100.0)) is None
    assert rule.skipped == {"not a tanh or sigmoid input": 1}


def test_inactivity_threshold_is_strict():
    # one node, 100 samples, exactly 1 active: activity 1% is not < 1%
    column = np.full((100, 1), 50.0)
    column[0, 0] = 0.0
    assert observe(SaturatedActivation(), "l.tanh_input", column) is None
    column[0, 0] = 50.0  # 0% active
    assert observe(SaturatedActivation(), "l.tanh_input", column) is not None


def test_layer_threshold_is_strict():
    batch = np.zeros((3, 4))
    batch[:, :2] = 20.0                       # exactly 50% of the nodes saturated
    assert observe(SaturatedActivation(), "l.tanh_input", batch) is None
    batch[:, 2] = 20.0                        # 75%
    finding = observe(SaturatedActivation(), "l.tanh_input", batch)
    assert finding.details["layers"] == {"l.tanh_input": 75.0}


def test_axis_zero_is_the_batch_other_positions_are_nodes():
    batch = np.zeros((2, 2, 3))
    batch[:, 0, :] = 20.0                     # 3 of 6 nodes saturated: 50%, no fire
    assert observe(SaturatedActivation(), "l.tanh_input", batch) is None
    batch[:, 1, 0] = 20.0                     # 4 of 6
    assert observe(SaturatedActivation(), "l.tanh_input", batch).details["nodes"] == 6


def test_one_dimensional_tensor_is_one_node():
    samples = np.full(200, 20.0)
    samples[:1] = 0.0                         # 0.5% active < 1%: the one node is saturated
    finding = observe(SaturatedActivation(), "l.tanh_input", samples)
    assert finding.details["nodes"] == 1 and finding.details["saturated_nodes"] == 1


def test_nan_values_are_left_out_and_an_all_nan_node_is_not_saturated():
    batch = np.array([[math.nan, math.nan, 20.0],
                      [math.nan, 0.0, 20.0],
                      [math.nan, math.nan, 20.0]])
    # node 0: no values, not saturated; node 1: 1 of 1 active; node 2: saturated -> 1/3
    assert observe(SaturatedActivation(), "l.tanh_input", batch) is None
    batch[1, 1] = 20.0                        # node 1 now saturated -> 2/3 > 50%
    finding = observe(SaturatedActivation(), "l.tanh_input", batch)
    assert (finding.details["saturated_nodes"], finding.details["nodes"]) == (2, 3)


def test_integer_inputs_are_compared_as_float64():
    finding = RuleRun(SaturatedActivation()).feed(
        Observation.of("l.tanh_input", 0, data=np.full((2, 2), 10, dtype=np.int8)))
    assert finding is not None


def test_threshold_tuple_strings_and_split_forms():
    assert SaturatedActivation(threshold_tanh="(-1, 1)").threshold_tanh == (-1.0, 1.0)
    rule = SaturatedActivation(threshold_tanh_max="2.5", threshold_sigmoid_min=-5)
    assert rule.threshold_tanh == (-9.4999, 2.5) and rule.threshold_sigmoid == (-5.0, 16.99999)
    assert observe(rule, "l.tanh_input", np.full((2, 1), 3.0)) is not None
    assert (SaturatedActivation.resolve_params("x", {"threshold_tanh_min": -1, "threshold_tanh_max": 1})
            == SaturatedActivation.resolve_params("x", {"threshold_tanh": "(-1, 1)"}))


@pytest.mark.parametrize("params, parameter", [
    ({"threshold_tanh": "(1, -1)"}, "threshold_tanh"),
    ({"threshold_tanh": "1, 2, 3"}, "threshold_tanh"),
    ({"threshold_tanh_min": 10}, "threshold_tanh"),
    ({"threshold_layer": "150"}, "threshold_layer"),
    ({"threshold_inactivity": "x"}, "threshold_inactivity"),
])
def test_bad_thresholds_are_config_errors(params, parameter):
    with pytest.raises(ConfigError, match=f"SaturatedActivation.*'{parameter}'"):
        SaturatedActivation(**params)


def test_default_regex_selects_tanh_and_sigmoid_inputs_anywhere_in_the_name():
    rule = SaturatedActivation()
    assert rule.selects("block1/lstm.tanh_input_0", ())
    assert rule.selects("gate.sigmoid_input", ())
    assert not rule.selects("fc.relu_input", ("activations",))


def test_modes_eval_and_train_independently_predict_ignored_one_alert_per_step():
    hot = np.full((2, 2), 50.0)
    events = []
    for mode in ("TRAIN", "EVAL", "PREDICT"):
        events += [tensor("a.tanh_input", 0, hot, mode=mode),
                   tensor("b.tanh_input", 0, hot, mode=mode)]
    found = alerts(engine_for("SaturatedActivation"), events)
    assert [(a.mode, a.step, a.tensors) for a in found] == [
        ("TRAIN", 0, ("a.tanh_input",)), ("EVAL", 0, ("a.tanh_input",))]


def test_fires_at_every_saturated_step():
    events = [tensor("a.sigmoid_input", s, np.full((2, 3), 30.0 if s % 2 else 0.0))
              for s in range(6)]
    assert steps(alerts(engine_for("SaturatedActivation"), events)) == [1, 3, 5]


@pytest.mark.parametrize("shape", [(0, 16), (0,), (16, 0), (0, 4, 4), (3, 0, 2)])
def test_zero_size_tensor_is_skipped_and_counted_not_an_error(shape):
    # an empty batch (no samples) or no nodes: nothing is saturated, the rule says so as a skip
    rule = SaturatedActivation()
    assert observe(rule, "l.tanh_input", np.zeros(shape)) is None
    assert rule.skipped == {"empty tensor": 1}
    # through the engine as the protocol carries it: shape [0, 16], data b""
    event = tensor("l.tanh_input", 0, np.zeros(shape, dtype=np.float32))
    assert event.data == b"" and event.shape == shape
    engine = engine_for("SaturatedActivation")
    assert alerts(engine, [event]) == []
    assert engine.stats.skipped == {"SaturatedActivation: empty tensor": 1}
