"""TensorVariance: population variance, strict thresholds, NaN and Inf, reductions, parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.rules.routed import feed
from trainsentry.rules.base import ConfigError
from trainsentry.rules.rule_run import RuleRun
from trainsentry.rules.tensor_variance import TensorVariance


def run(**params) -> RuleRun:
    params.setdefault("tensor_regex", "w")
    return RuleRun(TensorVariance(**params))


def variance_of(found):
    return found[0].details["tensors"]["w"]["variance"]


def test_population_variance():
    found = feed(run(max_threshold=0.5), "w", 0, data=[1.0, 3.0])
    assert variance_of(found) == 1.0  # ddof 0: ((1-2)**2 + (3-2)**2) / 2


@pytest.mark.parametrize("max_threshold, fires", [(1.0, False), (0.9999, True)])
def test_max_threshold_is_strict(max_threshold, fires):
    assert bool(feed(run(max_threshold=max_threshold), "w", 0, data=[1.0, 3.0])) is fires


@pytest.mark.parametrize("min_threshold, fires", [("1", False), ("1.0001", True)])
def test_min_threshold_is_strict(min_threshold, fires):
    assert bool(feed(run(min_threshold=min_threshold), "w", 0, data=[1.0, 3.0])) is fires


def test_an_absent_threshold_never_fires():
    assert not feed(run(max_threshold=10), "w", 0, data=[1.0, 1.0])
    assert not feed(run(min_threshold=0.1), "w", 0, data=[-100.0, 100.0])


def test_nan_elements_are_left_out_all_nan_and_infinite_are_skipped():
    rule_run = run(max_threshold=0.5)
    assert variance_of(feed(rule_run, "w", 0, data=[1.0, math.nan, 3.0])) == 1.0
    assert not feed(rule_run, "w", 1, data=[math.nan])
    assert not feed(rule_run, "w", 2, data=[1.0, math.inf])
    assert not feed(rule_run, "w", 3, data=[-1e200, 1e200])  # a variance beyond float64
    assert rule_run.rule.skipped == {"all NaN": 1, "non-finite variance": 2}


def test_finite_variance_whose_squares_overflow_is_computed():
    found = feed(run(max_threshold=1e308), "w", 0, data=[-1.2e154, 1.2e154])
    assert variance_of(found) == pytest.approx(1.44e308, rel=1e-12)


@pytest.mark.parametrize("reductions, variance", [({"variance": 4.0, "std": 1.0}, 4.0),
                                                  ({"std": 3.0}, 9.0)])
def test_from_reductions_variance_else_std_squared(reductions, variance):
    assert variance_of(feed(run(max_threshold=0.5), "w", 0, reductions=reductions)) == variance


def test_reductions_without_variance_or_std_and_empty_tensors_are_skipped():
    rule_run = run(max_threshold=0.5)
    assert not feed(rule_run, "w", 0, reductions={"mean": 1.0})
    assert not feed(rule_run, "w", 1, reductions={"std": 1e200})  # inf: non-finite
    assert not feed(rule_run, "w", 2, data=np.zeros((4, 0)))
    assert rule_run.rule.skipped == {"reductions without variance or std": 1,
                                     "non-finite variance": 1, "empty tensor": 1}


def test_integer_and_bool_tensors():
    assert feed(run(max_threshold=0.2), "w", 0, data=np.array([True, False]))  # 0.25
    assert feed(run(min_threshold=1), "w", 0, data=np.full(3, 7, dtype=np.uint64))


@pytest.mark.parametrize("mode, evaluated", [("TRAIN", True), ("EVAL", True), ("GLOBAL", True),
                                             ("PREDICT", False)])
def test_every_mode_but_predict(mode, evaluated):
    assert bool(feed(run(min_threshold=1), "w", 0, data=[0.0], mode=mode)) is evaluated


def test_at_least_one_threshold_is_required():
    with pytest.raises(ConfigError, match=r"rule 'TensorVariance' \(TensorVariance\): parameter "
                                          r"'max_threshold': give max_threshold or min_threshold"):
        TensorVariance(tensor_regex="w")
    with pytest.raises(ConfigError, match="max_threshold or min_threshold"):
        TensorVariance(tensor_regex="w", max_threshold="None", min_threshold="")


def test_one_of_collection_names_and_tensor_regex_is_required():
    with pytest.raises(ConfigError, match="give collection_names or tensor_regex"):
        TensorVariance(max_threshold=1)


def test_min_threshold_must_be_below_max_threshold():
    with pytest.raises(ConfigError, match="min_threshold.*must be < max_threshold"):
        TensorVariance(tensor_regex="w", min_threshold=2, max_threshold=2)
