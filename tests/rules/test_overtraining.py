"""Overtraining: best values, delta, stale counts per mode, both patiences, NaN, keys and modes."""

from __future__ import annotations

import math

import pytest

from tests.rules.routed import feed
from trainsentry.rules.base import ConfigError
from trainsentry.rules.overtraining import Overtraining
from trainsentry.rules.rule_run import RuleRun


def run(**params) -> RuleRun:
    return RuleRun(Overtraining(**params))


def written(rule_run: RuleRun, values, name: str = "loss", **fields):
    return [f for mode, step, value in values
            for f in feed(rule_run, name, step, value, mode=mode, collections=("losses",), **fields)]


def flat(mode: str, count: int, value: float = 1.0, start: int = 0):
    return [(mode, start + i, value) for i in range(count)]


def test_fires_when_both_modes_stopped_improving_with_the_defaults():
    # the first value of each mode improves (sets the best); 5 TRAIN and 10 EVAL values after it do not
    values = flat("TRAIN", 6) + flat("EVAL", 10)
    assert not written(run(), values)
    found = written(run(), values + [("EVAL", 10, 1.0)])
    assert [(f.mode, f.step) for f in found] == [("EVAL", 10)]
    assert found[0].details["train"]["stale"] == 5 and found[0].details["eval"]["stale"] == 10


def test_fires_at_every_value_while_it_holds_in_either_mode():
    rule_run = run(patience_train=1, patience_validation=1)
    found = written(rule_run, [("TRAIN", 0, 1.0), ("EVAL", 0, 1.0), ("TRAIN", 1, 1.0),
                               ("EVAL", 1, 1.0), ("TRAIN", 2, 1.0)])
    assert [(f.mode, f.step) for f in found] == [("EVAL", 1), ("TRAIN", 2)]


@pytest.mark.parametrize("value, improves", [(0.75, False), (0.7499, True)])
def test_an_improvement_is_strictly_below_best_minus_delta(value, improves):
    rule_run = run(patience_train=1, patience_validation=1, delta="0.25")
    written(rule_run, [("EVAL", 0, 1.0), ("EVAL", 1, 1.0), ("TRAIN", 0, 1.0)])
    assert bool(written(rule_run, [("TRAIN", 1, value)])) is not improves


def test_an_improvement_resets_the_stale_count():
    rule_run = run(patience_train=2, patience_validation=1)
    values = [("EVAL", 0, 1.0), ("EVAL", 1, 1.0), ("TRAIN", 0, 1.0), ("TRAIN", 1, 1.0),
              ("TRAIN", 2, 0.5), ("TRAIN", 3, 0.5), ("TRAIN", 4, 0.5)]
    assert [f.step for f in written(rule_run, values)] == [4]


def test_nan_counts_as_a_value_that_does_not_improve():
    rule_run = run(patience_train=2, patience_validation=1)
    values = [("EVAL", 0, 1.0), ("EVAL", 1, math.nan), ("TRAIN", 0, 1.0), ("TRAIN", 1, math.nan),
              ("TRAIN", 2, math.nan)]
    assert [f.step for f in written(rule_run, values)] == [2]


def test_non_finite_values_never_set_the_best():
    rule_run = run(patience_train=1, patience_validation=1)
    values = [("EVAL", 0, math.nan), ("TRAIN", 0, -math.inf), ("TRAIN", 1, 5.0)]
    # -inf is stale, 5.0 is the first finite TRAIN value: it improves
    assert [f.step for f in written(rule_run, values)] == [0]
    found = written(rule_run, [("TRAIN", 2, 5.0)])
    assert found[0].details["train"] == {"best": 5.0, "best_step": 1, "stale": 1}


def test_a_run_without_eval_values_never_fires():
    assert not written(run(patience_train=1), flat("TRAIN", 100))


def test_each_worker_and_loss_tensor_is_its_own_state():
    rule_run = run(patience_train=1, patience_validation=1)
    written(rule_run, [("TRAIN", 0, 1.0), ("TRAIN", 1, 1.0)], worker="0")
    assert not written(rule_run, [("EVAL", 0, 1.0), ("EVAL", 1, 1.0)], worker="1")
    assert not written(rule_run, [("EVAL", 0, 1.0)], name="other", worker="0")
    assert written(rule_run, [("EVAL", 0, 1.0), ("EVAL", 1, 1.0)], worker="0")
    assert sorted(key for _, key in rule_run.states) == [("0", "loss"), ("0", "other"), ("1", "loss")]


@pytest.mark.parametrize("mode", ["GLOBAL", "PREDICT"])
def test_only_train_and_eval_values_are_seen(mode):
    assert Overtraining().views(mode) == ()


@pytest.mark.parametrize("param, value", [("patience_train", 0), ("patience_validation", "0"),
                                          ("delta", -0.1)])
def test_parameters_are_checked(param, value):
    with pytest.raises(ConfigError, match=f"Overtraining.*{param}"):
        Overtraining(**{param: value})
