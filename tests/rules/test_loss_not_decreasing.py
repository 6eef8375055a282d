"""LossNotDecreasing: docs/rules.md test vectors, cadence, comparisons, NaN, selection and modes."""

from __future__ import annotations

import math

import pytest

from tests.rules.events import alerts, engine_for, losses, scalar, steps, tensor
from trainsentry.rules.base import ConfigError, Observation
from trainsentry.rules.loss_not_decreasing import LossNotDecreasing
from trainsentry.rules.rule_run import RuleRun


def test_vector_defaults_first_alert_at_step_12():
    found = alerts(engine_for("LossNotDecreasing"), losses([0.3, 0.33, 0.31, 0.30, 0.28], every=4))
    assert steps(found)[0] == 12
    assert found[0].details["reference_step"] == 0
    assert found[0].details["value"] == 0.30 and found[0].details["reference_value"] == 0.3


def test_vector_diff_percent_20_first_alert_at_step_24():
    values = [0.3, 0.33, 0.31, 0.30, 0.28, 0.2, 0.42]
    found = alerts(engine_for("LossNotDecreasing", diff_percent=20), losses(values, every=4))
    assert 12 not in steps(found)
    assert steps(found)[0] == 24
    assert found[0].details["reference_step"] == 12
    assert found[0].details["reference_value"] == 0.30 and found[0].details["value"] == 0.42


def test_cadence_saved_every_3_with_num_steps_10_evaluates_at_12_24_36():
    run = RuleRun(LossNotDecreasing(num_steps=10))
    evaluated = []
    for step in range(0, 40, 3):
        run.feed(Observation.of("loss", step, 1.0))  # constant: every evaluation fires
        if run.states[("trial", ("0", "TRAIN", "loss"))].last_evaluated == step:
            evaluated.append(step)
    assert evaluated == [12, 24, 36]
    found = alerts(engine_for("LossNotDecreasing"), losses([1.0] * 14, every=3))
    assert [(a.step, a.details["reference_step"]) for a in found] == [(12, 0), (24, 12), (36, 24)]


def test_cadence_documentation_example_21_against_9_then_33():
    # saved every 3 steps from 9 (9, 12, ... ): the first evaluation is at 21 against 9, then 33
    found = alerts(engine_for("LossNotDecreasing"), losses([1.0] * 10, every=3, start=9))
    assert [(a.step, a.details["reference_step"]) for a in found] == [(21, 9), (33, 21)]


def test_steps_between_evaluations_are_not_evaluated():
    # loss rises right after an evaluation: no alert before the next evaluation step
    values = [1.0] + [0.5] * 10 + [2.0] * 5 + [0.1] * 10
    found = alerts(engine_for("LossNotDecreasing"), losses(values))
    assert steps(found) == []
    found = alerts(engine_for("LossNotDecreasing"), losses([1.0] + [0.5] * 10 + [2.0] * 12))
    assert steps(found) == [20]


def test_reference_is_newest_saved_step_at_least_num_steps_back_with_gaps():
    events = [scalar("loss", s, v) for s, v in [(0, 5.0), (3, 1.0), (7, 9.0), (14, 2.0)]]
    found = alerts(engine_for("LossNotDecreasing"), events)
    # at 14 the newest step <= 4 is 3 (1.0): 2.0 >= 1.0 fires
    assert [(a.step, a.details["reference_step"]) for a in found] == [(14, 3)]


def test_no_reference_no_evaluation():
    assert alerts(engine_for("LossNotDecreasing"), losses([1.0, 2.0, 3.0], every=3)) == []


@pytest.mark.parametrize("cur, fires", [(0.3, True), (0.30000000000000004, True),
                                        (0.29999999999999993, False)])
def test_default_fires_unless_strictly_decreased(cur, fires):
    found = alerts(engine_for("LossNotDecreasing", num_steps=1), losses([0.3, cur]))
    assert bool(found) is fires


@pytest.mark.parametrize("cur, fires", [(1.2, True), (1.19, False), (1.25, True)])
def test_diff_percent_boundary_is_inclusive(cur, fires):
    found = alerts(engine_for("LossNotDecreasing", num_steps=1, diff_percent=20),
                   losses([1.0, cur]))
    assert bool(found) is fires


def test_diff_percent_uses_absolute_previous_value():
    # prev -1.0, 50%: fires iff cur >= -1.0 + 0.5 = -0.5
    assert alerts(engine_for("LossNotDecreasing", num_steps=1, diff_percent=50), losses([-1.0, -0.5]))
    assert not alerts(engine_for("LossNotDecreasing", num_steps=1, diff_percent=50),
                      losses([-1.0, -0.6]))


@pytest.mark.parametrize("value", ["100", "-1", 100.0, "abc"])
def test_diff_percent_out_of_range_is_a_config_error(value):
    with pytest.raises(ConfigError, match="diff_percent"):
        LossNotDecreasing(diff_percent=value)


def test_nan_loss_is_an_evaluation_that_does_not_fire_and_counts_for_cadence():
    values = [1.0] * 10 + [math.nan] + [5.0] * 9 + [2.0] + [3.0] * 10
    found = alerts(engine_for("LossNotDecreasing"), losses(values))
    # 10 is a NaN evaluation: no alert, and no evaluation at 11 (5.0 against 1.0 would fire);
    # 20 is evaluated against the NaN at 10 (no alert); 30 against 20 fires
    assert steps(found) == [30]


def test_nan_reference_does_not_fire():
    assert alerts(engine_for("LossNotDecreasing", num_steps=1), losses([math.nan, 5.0])) == []


def test_infinite_previous_loss_is_no_special_case():
    assert alerts(engine_for("LossNotDecreasing", num_steps=1), losses([math.inf, math.inf]))
    assert not alerts(engine_for("LossNotDecreasing", num_steps=1), losses([math.inf, 1e308]))


def test_each_loss_is_its_own_series_and_one_alert_per_step():
    a = losses([1.0, 1.0], name="loss_a")
    b = losses([1.0, 2.0], name="loss_b")
    engine = engine_for("LossNotDecreasing", num_steps=1)
    found = alerts(engine, [a[0], b[0], a[1], b[1]])
    assert [(x.step, x.tensors) for x in found] == [(1, ("loss_a",))]


def test_only_one_element_values_count():
    engine = engine_for("LossNotDecreasing", num_steps=1)
    events = [tensor("loss", 0, [1.0, 2.0], collections=("losses",)),
              tensor("loss", 1, [[5.0]], collections=("losses",)),
              tensor("loss", 2, [6.0], collections=("losses",), dtype="float32")]
    found = alerts(engine, events)
    assert steps(found) == [2]
    assert engine.stats.skipped == {"LossNotDecreasing: not one element": 1}


def test_selection_losses_collection_by_default_and_union():
    engine = engine_for("LossNotDecreasing", num_steps=1, collection_names="metrics",
                        tensor_regex="val_")
    events = [scalar("a", 0, 1.0), scalar("a", 1, 1.0),                                  # losses
              scalar("b", 0, 1.0, collections=("metrics",)), scalar("b", 1, 1.0, collections=("metrics",)),
              scalar("my_val_acc", 0, 1.0, collections=()), scalar("my_val_acc", 1, 1.0, collections=()),
              scalar("lr", 0, 1.0, collections=("hyper",)), scalar("lr", 1, 1.0, collections=("hyper",))]
    found = alerts(engine, events)
    assert [a.tensors for a in found] == [("a",)]  # one alert for step 1...
    assert engine.stats.unselected == 2            # ...and lr was never routed


def test_use_losses_collection_false_and_nothing_else_selects_every_one_element_series():
    rule = LossNotDecreasing(use_losses_collection=False)
    assert rule.selects("lr", ()) and rule.selects("whatever", ("weights",))
    rule = LossNotDecreasing(use_losses_collection="False", tensor_regex="loss")
    assert not rule.selects("lr", ("losses",)) and rule.selects("train_loss", ())


def test_empty_string_regex_means_none():
    rule = LossNotDecreasing(tensor_regex="", collection_names="")
    assert rule.selects("x", ("losses",)) and not rule.selects("x", ("metrics",))


def test_mode_absent_evaluates_eval_and_train_independently_and_not_predict():
    engine = engine_for("LossNotDecreasing", num_steps=1)
    events = []
    for mode in ("TRAIN", "EVAL", "PREDICT", "GLOBAL"):
        events += losses([1.0, 1.0], mode=mode)
    found = alerts(engine, events)
    assert sorted(a.mode for a in found) == ["EVAL", "GLOBAL", "TRAIN"]


def test_mode_given_evaluates_only_that_mode():
    events = []
    for mode in ("TRAIN", "EVAL", "PREDICT"):
        events += losses([1.0, 1.0], mode=mode)
    assert [a.mode for a in alerts(engine_for("LossNotDecreasing", num_steps=1, mode="eval"),
                                   events)] == ["EVAL"]
    assert [a.mode for a in alerts(engine_for("LossNotDecreasing", num_steps=1, mode="PREDICT"),
                                   events)] == ["PREDICT"]


def test_mode_global_takes_every_event_numbered_by_global_step():
    events = [scalar("loss", 0, 1.0, mode="TRAIN", global_step=0),
              scalar("loss", 0, 0.5, mode="EVAL", global_step=1),
              scalar("loss", 1, 0.7, mode="TRAIN", global_step=2)]
    found = alerts(engine_for("LossNotDecreasing", num_steps=1, mode="GLOBAL"), events)
    assert [(a.mode, a.step, a.details["reference_step"]) for a in found] == [("GLOBAL", 2, 1)]


def test_state_is_bounded_by_num_steps():
    engine = engine_for("LossNotDecreasing", num_steps=5)
    empty = engine.store.state_bytes()  # the trials' state (the engine adds its route caches)
    engine.process_many(losses([1.0 / (step + 1) for step in range(1000)]))
    windows = engine.store.find("run-1").tables[0].entries  # rule 0's states
    assert [len(window.saved) <= 6 for window in windows.values()] == [True]
    before = engine.store.state_bytes()
    engine.forget_trial("run-1")
    assert before > empty and engine.store.state_bytes() == empty and engine.trials() == []
