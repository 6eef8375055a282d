"""Overfit: phases, means, ratio, patience, start_step, NaN, keys and modes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.rules.routed import feed
from trainsentry.rules.base import ConfigError
from trainsentry.rules.overfit import Overfit
from trainsentry.rules.rule_run import RuleRun


def run(**params) -> RuleRun:
    return RuleRun(Overfit(**params))


def written(rule_run: RuleRun, values, name: str = "loss", **fields):
    """(mode, step, value) in the order written -> the findings."""
    return [f for mode, step, value in values
            for f in feed(rule_run, name, step, value, mode=mode, collections=("losses",), **fields)]


VECTOR = [("TRAIN", 0, 1.0), ("TRAIN", 1, 1.0), ("EVAL", 0, 1.05), ("TRAIN", 2, 1.0),
          ("EVAL", 1, 1.2), ("EVAL", 2, 1.3)]


def test_vector_fires_at_eval_steps_1_and_2():
    found = written(run(), VECTOR)
    assert [(f.mode, f.step) for f in found] == [("EVAL", 1), ("EVAL", 2)]
    assert [f.details["ratio"] for f in found] == pytest.approx([0.2, 0.25])
    assert found[1].details["val_mean"] == pytest.approx(1.25)
    assert found[1].details["train_mean"] == 1.0


def test_vector_eval_0_has_ratio_0_05_and_does_not_fire():
    found = written(run(ratio_threshold=0.04), VECTOR[:3])
    assert [f.step for f in found] == [0] and found[0].details["ratio"] == pytest.approx(0.05)
    assert not written(run(), VECTOR[:3])


@pytest.mark.parametrize("threshold, fires", [(0.5, False), (0.4999, True)])
def test_ratio_threshold_is_strict(threshold, fires):
    values = [("TRAIN", 0, 2.0), ("EVAL", 0, 3.0)]  # ratio exactly 0.5
    assert bool(written(run(ratio_threshold=str(threshold)), values)) is fires


def test_ratio_uses_the_absolute_training_mean():
    found = written(run(), [("TRAIN", 0, -1.0), ("EVAL", 0, -0.75)])
    assert found[0].details["ratio"] == 0.25


def test_patience_counts_consecutive_evaluations_across_phases_and_resets():
    values = [("TRAIN", 0, 1.0), ("EVAL", 0, 1.5), ("TRAIN", 1, 1.0), ("EVAL", 1, 1.5),
              ("EVAL", 2, 1.5), ("TRAIN", 2, 1.0), ("EVAL", 3, 0.9), ("EVAL", 4, 5.0),
              ("TRAIN", 3, 1.0), ("EVAL", 5, 1.5)]
    found = written(run(patience="2"), values)
    # eval 1 and 2 are the 2nd and 3rd in a row; eval 3 resets; eval 4 (mean 2.95) is 1st again
    assert [f.step for f in found] == [1, 2, 5]
    assert [f.details["evaluations_above"] for f in found] == [2, 3, 2]


def test_train_values_before_start_step_do_not_count():
    values = [("TRAIN", 0, 1.0), ("EVAL", 0, 5.0),  # no counted TRAIN value: no evaluation
              ("TRAIN", 1, 100.0), ("TRAIN", 2, 1.0), ("TRAIN", 3, 2.0), ("EVAL", 1, 2.0)]
    found = written(run(start_step="2"), values)
    assert [f.step for f in found] == [1]
    assert found[0].details["train_mean"] == 1.5 and found[0].details["train_values"] == 2


def test_a_train_phase_without_counted_finite_values_keeps_the_older_reference():
    values = [("TRAIN", 0, 1.0), ("EVAL", 0, 1.0), ("TRAIN", 1, math.nan), ("TRAIN", 2, math.inf),
              ("EVAL", 1, 2.0)]
    found = written(run(), values)
    assert [f.step for f in found] == [1] and found[0].details["train_mean"] == 1.0
    assert found[0].details["val_mean"] == 2.0  # a new EVAL phase: eval 0 is not in it


def test_non_finite_values_are_left_out_of_the_means():
    values = [("TRAIN", 0, 1.0), ("TRAIN", 1, math.nan), ("EVAL", 0, math.nan),
              ("EVAL", 1, math.inf), ("EVAL", 2, 1.5)]
    found = written(run(), values)
    assert [f.step for f in found] == [2] and found[0].details["val_values"] == 1


def test_no_evaluation_without_a_train_phase_or_with_a_zero_training_mean():
    rule_run = run(patience=2)
    assert not written(rule_run, [("EVAL", 0, 5.0), ("TRAIN", 0, 0.0), ("EVAL", 1, 5.0)])
    # the zero mean was no evaluation: the run of 1 from eval 2 is not reset by it
    found = written(rule_run, [("TRAIN", 1, 1.0), ("EVAL", 2, 5.0), ("TRAIN", 2, 0.0),
                               ("EVAL", 3, 5.0), ("TRAIN", 3, 1.0), ("EVAL", 4, 5.0)])
    assert [f.step for f in found] == [4]


def test_each_worker_and_loss_tensor_is_its_own_state_shared_by_train_and_eval():
    rule_run = run()
    for worker in ("0", "1"):
        for name in ("loss", "aux_loss"):
            written(rule_run, [("TRAIN", 0, 1.0), ("EVAL", 0, 1.0)], name=name, worker=worker)
    assert sorted(key for _, key in rule_run.states) == [("0", "aux_loss"), ("0", "loss"),
                                                         ("1", "aux_loss"), ("1", "loss")]
    assert written(rule_run, [("EVAL", 1, 2.0)], name="loss", worker="1")[0].worker == "1"


@pytest.mark.parametrize("mode", ["GLOBAL", "PREDICT"])
def test_only_train_and_eval_values_are_seen(mode):
    rule = Overfit()
    assert rule.views(mode) == ()
    assert [v.mode for v in rule.views("TRAIN") + rule.views("EVAL")] == ["TRAIN", "EVAL"]


def test_only_one_element_values_count():
    rule_run = run()
    values = [("TRAIN", 0, 1.0), ("EVAL", 0, 2.0)]
    assert not feed(rule_run, "loss", 0, data=np.ones(2), collections=("losses",))
    assert written(rule_run, values)
    assert rule_run.rule.skipped == {"not one element": 1}


def test_selection_defaults_to_losses_united_with_the_regex():
    rule = Overfit(tensor_regex="val_.*")
    assert rule.selects("loss", ("losses",)) and rule.selects("val_acc", ())
    assert not rule.selects("acc", ("metrics",))


@pytest.mark.parametrize("param, value", [("patience", 0), ("start_step", -1), ("ratio_threshold", "x")])
def test_parameters_are_checked(param, value):
    with pytest.raises(ConfigError, match=f"Overfit.*{param}"):
        Overfit(**{param: value})
