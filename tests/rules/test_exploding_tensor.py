"""ExplodingTensor: NaN and infinities, only_nan, reductions, selection, modes, skipped inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.rules.routed import feed
from trainsentry.rules.base import Observation
from trainsentry.rules.exploding_tensor import ExplodingTensor
from trainsentry.rules.rule_run import RuleRun

NAN, INF = math.nan, math.inf


def run(**params) -> RuleRun:
    return RuleRun(ExplodingTensor(**params))


@pytest.mark.parametrize("values, fires", [([0.0, 1e308, -1e308], False), ([NAN], True),
                                           ([1.0, INF], True), ([-INF, 1.0], True)])
def test_fires_on_nan_and_on_either_infinity(values, fires):
    assert bool(feed(run(), "w", 0, data=np.array(values))) is fires


@pytest.mark.parametrize("only_nan", [True, "True", "true"])
def test_only_nan_ignores_infinities_not_nan(only_nan):
    assert not feed(run(only_nan=only_nan), "w", 0, data=[INF, -INF])
    assert feed(run(only_nan=only_nan), "w", 0, data=[INF, NAN])


def test_details_count_nan_and_infinite_elements():
    found = feed(run(), "fc.weight", 3, data=np.array([NAN, NAN, INF, -INF, 1.0], dtype=np.float16))
    assert found[0].details["tensors"] == {"fc.weight": {"nan": 2, "inf": 2, "elements": 5}}
    assert found[0].message == "fc.weight: 2 NaN and 2 infinite of 5 elements"
    assert (found[0].step, found[0].tensors) == (3, ("fc.weight",))


@pytest.mark.parametrize("dtype", ["int8", "uint64", "bool", "int64"])
def test_integer_and_bool_tensors_never_fire(dtype):
    info_max = 1 if dtype == "bool" else np.iinfo(dtype).max
    assert not feed(run(), "w", 0, data=np.array([0, info_max], dtype=dtype))


def test_a_nan_scalar_fires():
    assert feed(run(), "loss", 0, NAN, collections=("losses",))[0].details["tensors"]["loss"]["nan"] == 1


@pytest.mark.parametrize("reductions, fires", [
    ({"nan_count": 1.0}, True), ({"nan_count": 0.0, "min": -1.0, "max": 1.0}, False),
    ({"max": INF}, True), ({"min": -INF}, True), ({"mean": NAN}, True), ({"l1": INF}, True),
    ({"l2": NAN}, True), ({"std": INF, "variance": NAN}, False)])
def test_from_reductions(reductions, fires):
    assert bool(feed(run(), "w", 0, reductions=reductions)) is fires


@pytest.mark.parametrize("reductions, fires", [
    ({"nan_count": 2.0}, True), ({"max": INF, "min": -INF, "l1": INF, "l2": INF}, False),
    ({"min": NAN}, True), ({"l2": NAN}, True),
    ({"mean": NAN}, False)])  # +Inf beside -Inf makes the mean NaN without any NaN element
def test_from_reductions_with_only_nan(reductions, fires):
    assert bool(feed(run(only_nan=True), "w", 0, reductions=reductions)) is fires


def test_reductions_details_show_what_they_have():
    found = feed(run(), "w", 0, reductions={"nan_count": 3.0, "max": INF, "min": 0.0})
    assert found[0].details["tensors"]["w"] == {"nan_count": 3.0, "non_finite": {"max": INF}}


def test_reductions_with_nothing_to_check_and_empty_tensors_are_skipped_and_counted():
    rule_run = run()
    assert not feed(rule_run, "w", 0, reductions={"count": 4.0, "std": 1.0})
    for shape in [(0,), (0, 3), (3, 0)]:
        assert not feed(rule_run, "w", 1, data=np.zeros(shape))
    assert rule_run.rule.skipped == {"reductions without nan_count, min, max, mean, l1 or l2": 1,
                                     "empty tensor": 3}


def test_no_selection_selects_everything_including_log_metrics():
    rule = ExplodingTensor()
    assert rule.selects("anything", ()) and rule.selects("loss", ("metrics",))
    assert feed(run(), "loss", 4, NAN, mode="GLOBAL", collections=("metrics",))


def test_selection_is_the_union_of_collections_and_regexes():
    rule = ExplodingTensor(collection_names="gradients", tensor_regex="loss, .*relu")
    assert rule.selects("g", ("gradients",)) and rule.selects("total_loss", ())
    assert rule.selects("a.relu_input", ()) and not rule.selects("fc.weight", ("weights",))


@pytest.mark.parametrize("mode, evaluated", [("TRAIN", True), ("EVAL", True), ("GLOBAL", True),
                                             ("PREDICT", False)])
def test_every_mode_but_predict_is_evaluated(mode, evaluated):
    found = feed(run(), "w", 0, data=[NAN], mode=mode)
    assert bool(found) is evaluated
    assert all(f.mode == mode for f in found)


def test_every_step_fires_and_each_tensor_is_judged_alone():
    rule_run = run()
    found = [f for step in range(3) for f in feed(rule_run, "w", step, data=[NAN])]
    assert [f.step for f in found] == [0, 1, 2]
    assert RuleRun(ExplodingTensor()).feed(Observation.of("ok", 0, data=[1.0])) is None
