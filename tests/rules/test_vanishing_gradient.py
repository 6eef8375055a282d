"""VanishingGradient: the mean of |g|, strictness, NaN and Inf, reductions, modes, selection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.rules.routed import feed
from trainsentry.rules.rule_run import RuleRun
from trainsentry.rules.vanishing_gradient import VanishingGradient

GRADIENTS = ("gradients",)


def run(**params) -> RuleRun:
    return RuleRun(VanishingGradient(**params))


def test_vector_fires_at_5_and_not_for_larger_gradients():
    rule_run = run()
    found = feed(rule_run, "g", 5, data=[1e-8, -1e-8, 0, 2e-8], collections=GRADIENTS)
    assert [f.step for f in found] == [5]
    assert found[0].details["tensors"]["g"]["mean_abs"] == pytest.approx(1e-8, rel=1e-15)
    assert not feed(rule_run, "g", 6, data=[1e-6, 0], collections=GRADIENTS)


@pytest.mark.parametrize("threshold, fires", [(0.5, False), (0.5000001, True)])
def test_threshold_is_strict(threshold, fires):
    found = feed(run(threshold=str(threshold)), "g", 0, data=[0.25, -0.75], collections=GRADIENTS)
    assert bool(found) is fires


def test_nan_elements_are_left_out_and_all_nan_is_skipped():
    rule_run = run()
    assert feed(rule_run, "g", 0, data=[math.nan, 1e-8], collections=GRADIENTS)
    assert not feed(rule_run, "g", 1, data=[math.nan, math.nan], collections=GRADIENTS)
    assert rule_run.rule.skipped == {"all NaN": 1}


def test_an_infinite_element_never_fires():
    assert not feed(run(), "g", 0, data=[math.inf, 0.0, 0.0], collections=GRADIENTS)
    assert not feed(run(), "g", 0, data=[-math.inf], collections=GRADIENTS)


def test_float16_and_integer_gradients_are_compared_in_float64():
    tiny = np.array([6e-8, -6e-8], dtype=np.float16)  # subnormal float16: mean |g| about 6e-8
    assert feed(run(), "g", 0, data=tiny, collections=GRADIENTS)
    assert feed(run(), "g", 0, data=np.zeros(3, dtype=np.int32), collections=GRADIENTS)


@pytest.mark.parametrize("reductions, fires", [({"l1": 4e-8, "count": 4.0}, True),
                                               ({"l1": 4e-7, "count": 4.0}, False)])
def test_from_reductions_the_mean_is_l1_over_count(reductions, fires):
    assert bool(feed(run(), "g", 0, reductions=reductions, collections=GRADIENTS)) is fires


@pytest.mark.parametrize("reductions", [{"l2": 0.0}, {"l1": 0.0}, {"l1": 0.0, "count": 0.0},
                                        {"l1": 0.0, "count": math.nan}])
def test_reductions_without_l1_and_a_positive_count_are_skipped(reductions):
    rule_run = run()
    assert not feed(rule_run, "g", 0, reductions=reductions, collections=GRADIENTS)
    assert rule_run.rule.skipped == {"reductions without l1 and a positive count": 1}


@pytest.mark.parametrize("mode, evaluated", [("TRAIN", True), ("GLOBAL", True), ("EVAL", False),
                                             ("PREDICT", False)])
def test_train_and_global_written_series_only(mode, evaluated):
    assert bool(feed(run(), "g", 0, data=[0.0], mode=mode, collections=GRADIENTS)) is evaluated


def test_selection_defaults_to_gradients_united_with_the_regex():
    rule = VanishingGradient(tensor_regex=r"\.grad$")
    assert rule.selects("g", GRADIENTS) and rule.selects("fc.weight.grad", ())
    assert not rule.selects("fc.weight", ("weights",))
    assert not VanishingGradient(collection_names="").selects("g", GRADIENTS)


def test_empty_tensors_are_skipped_and_counted():
    rule_run = run()
    assert not feed(rule_run, "g", 0, data=np.zeros((0, 4)), collections=GRADIENTS)
    assert rule_run.rule.skipped == {"empty tensor": 1}
