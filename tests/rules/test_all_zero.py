"""AllZero: percent of zero elements, >= threshold, signed zero and NaN, modes, parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.rules.routed import feed
from trainsentry.rules.all_zero import AllZero
from trainsentry.rules.base import ConfigError
from trainsentry.rules.rule_run import RuleRun


def run(**params) -> RuleRun:
    params.setdefault("collection_names", "weights")
    return RuleRun(AllZero(**params))


def check(rule_run: RuleRun, data, **fields):
    return feed(rule_run, "w", 0, data=data, collections=("weights",), **fields)


def test_default_fires_only_when_every_element_is_zero():
    assert check(run(), [0.0, -0.0, 0.0])
    assert not check(run(), [0.0, 0.0, 5e-324])


@pytest.mark.parametrize("threshold, fires", [(50, True), ("50.0", True), (50.0001, False)])
def test_threshold_is_not_strict(threshold, fires):
    assert bool(check(run(threshold=threshold), [0.0, 1.0])) is fires


def test_nan_is_not_zero():
    found = check(run(threshold=50), [0.0, math.nan])
    assert found[0].details["tensors"]["w"] == {"zero_percent": 50.0, "zeros": 1, "elements": 2}
    assert not check(run(), [0.0, math.nan])


@pytest.mark.parametrize("data", [np.zeros(3, dtype=bool), np.zeros((2, 2), dtype=np.uint8), 0.0])
def test_bool_integer_and_scalar_zeros(data):
    assert check(run(), data)


def test_empty_and_reductions_only_tensors_are_skipped_and_counted():
    rule_run = run()
    assert not check(rule_run, np.zeros((0, 3)))
    assert not feed(rule_run, "w", 1, reductions={"min": 0.0, "max": 0.0}, collections=("weights",))
    assert rule_run.rule.skipped == {"empty tensor": 1, "reductions only": 1}


@pytest.mark.parametrize("mode, evaluated", [("TRAIN", True), ("EVAL", True), ("GLOBAL", True),
                                             ("PREDICT", False)])
def test_every_mode_but_predict(mode, evaluated):
    assert bool(check(run(), [0.0], mode=mode)) is evaluated


def test_every_saved_step_is_evaluated():
    rule_run = run()
    assert [f.step for s in range(3) for f in feed(rule_run, "w", s, data=[0.0],
                                                   collections=("weights",))] == [0, 1, 2]


def test_one_of_collection_names_and_tensor_regex_is_required():
    with pytest.raises(ConfigError, match=r"rule 'AllZero' \(AllZero\): parameter 'collection_names'"
                                          ": give collection_names or tensor_regex"):
        AllZero(threshold=90)
    assert AllZero(tensor_regex="bias").selects("fc.bias", ())


@pytest.mark.parametrize("threshold", [-1, 100.5, "x"])
def test_threshold_is_a_percent(threshold):
    with pytest.raises(ConfigError, match="threshold"):
        AllZero(tensor_regex="w", threshold=threshold)
