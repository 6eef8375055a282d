"""ClassImbalance: pairing, counts, imbalance and misprediction thresholds, argmax, skipped pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.rules.routed import feed
from trainsentry.rules.base import ConfigError
from trainsentry.rules.class_imbalance import ClassImbalance
from trainsentry.rules.rule_run import RuleRun


def run(**params) -> RuleRun:
    return RuleRun(ClassImbalance(**params))


def pair(rule_run: RuleRun, step: int, labels, predictions, **fields):
    return (feed(rule_run, "labels", step, data=np.asarray(labels), **fields)
            + feed(rule_run, "predictions", step, data=np.asarray(predictions), **fields))


def test_vector_990_zeros_and_10_ones_predicted_exactly_fires():
    labels = [0] * 990 + [1] * 10
    found = pair(run(), 0, labels, labels)
    assert found[0].details["imbalance"] == 99.0 and found[0].tensors == ("labels", "predictions")
    assert found[0].details["mispredicted"] == {}


@pytest.mark.parametrize("rare, fires", [(50, False), (49, True)])
def test_imbalance_threshold_is_strict(rare, fires):
    labels = [0] * 500 + [1] * rare  # 500 / 50 is exactly 10
    assert bool(pair(run(), 0, labels, labels)) is fires


@pytest.mark.parametrize("wrong, fires", [(7, False), (8, True)])
def test_misprediction_threshold_is_strict(wrong, fires):
    labels = [0] * 10 + [1] * 10
    predictions = [0] * 10 + [0] * wrong + [1] * (10 - wrong)  # class 1: 7 of 10 is exactly 0.7
    found = pair(run(samples=20), 0, labels, predictions)
    assert bool(found) is fires
    if fires:
        assert found[0].details["mispredicted"] == {"1": 0.8}


def test_evaluation_starts_once_samples_labels_are_counted():
    rule_run = run(samples="6", threshold_misprediction="0.4")
    labels = [0, 0, 1]
    assert not pair(rule_run, 0, labels, [1, 1, 0])      # 3 counted: no evaluation yet
    found = pair(rule_run, 1, labels, labels)           # 6 counted (>= samples): evaluated
    assert [f.step for f in found] == [1]
    assert found[0].details["samples"] == 6 and found[0].details["mispredicted"] == {"0": 0.5,
                                                                                     "1": 0.5}


def test_counts_accumulate_over_steps():
    rule_run = run(samples=1)
    assert not pair(rule_run, 0, [0] * 5 + [1] * 5, [0] * 5 + [1] * 5)
    found = pair(rule_run, 1, [0] * 100, [0] * 100)      # 105 vs 5: 21 > 10
    assert found[0].details["imbalance"] == 21.0
    assert found[0].details["most_frequent"] == {"class": 0, "count": 105}


def test_argmax_reads_classes_on_the_last_axis():
    scores = np.zeros((2, 3, 4))
    scores[..., 2] = 1.0                                 # every sample predicted class 2
    rule_run = run(samples=1, argmax="True")
    found = pair(rule_run, 0, np.full((2, 3), 1), scores)
    assert found[0].details["mispredicted"] == {"1": 1.0}
    assert not pair(run(samples=1, argmax=True), 0, np.full((2, 3), 2), scores)


def test_float_labels_are_truncated_toward_zero():
    rule_run = run(samples=1)
    assert not pair(rule_run, 0, [1.9, -0.5, 0.2, 1.0, -1.5], [1, 0, 0, 1.99, -1])
    assert rule_run.states[("trial", ("0", "TRAIN"))].classes == {0.0: [2, 0], 1.0: [2, 0],
                                                                  -1.0: [1, 0]}


def test_non_finite_labels_or_predictions_and_nan_scores_drop_the_pair():
    rule_run = run(samples=1)
    assert not pair(rule_run, 0, [0.0, math.nan], [0, 0])
    assert not pair(rule_run, 1, [0.0, math.inf], [0, 0])
    assert not pair(rule_run, 2, [0, 1], [0.0, math.nan])
    assert not pair(run(samples=1, argmax=True), 0, [0], [[math.nan, 1.0]])
    assert rule_run.rule.skipped == {"non-finite label": 2, "non-finite prediction": 1}
    assert rule_run.states[("trial", ("0", "TRAIN"))].samples == 0


def test_a_pair_whose_element_counts_differ_is_skipped_and_counted():
    rule_run = run(samples=1)
    assert not pair(rule_run, 0, [0, 1, 1], [0, 1])
    assert not pair(run(samples=1, argmax=True), 0, [0, 1], np.zeros((3, 2)))
    assert rule_run.rule.skipped == {"labels and predictions of different sizes": 1}


def test_the_first_tensor_of_each_kind_at_a_step_is_paired_later_ones_are_skipped():
    rule_run = run(samples=1, threshold_imbalance=1)
    assert not feed(rule_run, "labels", 0, data=np.array([0, 1]))
    assert not feed(rule_run, "other.labels", 0, data=np.array([5, 5]))
    assert feed(rule_run, "predictions", 0, data=np.array([1, 0]))  # class 0 and 1 all wrong
    assert not feed(rule_run, "predictions", 0, data=np.array([0, 1]))
    assert rule_run.rule.skipped == {"not the first labels of its step": 1,
                                     "not the first predictions of its step": 1}


def test_a_half_pair_is_dropped_at_the_next_step_and_an_older_step_is_skipped():
    rule_run = run(samples=1, threshold_imbalance=1)
    assert not feed(rule_run, "labels", 0, data=np.array([0, 1]))
    assert not feed(rule_run, "labels", 1, data=np.array([0, 0]))
    assert not feed(rule_run, "predictions", 0, data=np.array([0, 1]))
    assert feed(rule_run, "predictions", 1, data=np.array([1, 1]))
    assert rule_run.rule.skipped == {"labels or predictions without the other at their step": 1,
                                     "predictions of an earlier step": 1}


def test_reductions_only_and_empty_tensors_are_not_the_first_of_their_step():
    rule_run = run(samples=1, threshold_misprediction=0)
    assert not feed(rule_run, "labels", 0, reductions={"mean": 0.5})
    assert not feed(rule_run, "labels", 0, data=np.zeros((0,)))
    assert not feed(rule_run, "y.labels", 0, data=np.array([0, 1]))
    assert not feed(rule_run, "predictions", 0, data=np.array([0, 1]))  # no misprediction > 0
    assert rule_run.rule.skipped == {"reductions only": 1, "empty tensor": 1}


def test_pairs_are_per_worker_and_mode_and_predict_is_not_evaluated():
    rule_run = run(samples=1, threshold_imbalance=1)
    assert not feed(rule_run, "labels", 0, data=np.array([0, 0, 1]), mode="TRAIN")
    assert not feed(rule_run, "predictions", 0, data=np.array([0, 0, 1]), mode="EVAL")
    assert not feed(rule_run, "predictions", 0, data=np.array([0, 0, 1]), worker="1")
    assert [f.mode for f in feed(rule_run, "predictions", 0, data=np.array([0, 0, 1]))] == ["TRAIN"]
    assert ClassImbalance().views("PREDICT") == ()
    assert [v.mode for v in ClassImbalance().views("GLOBAL")] == ["GLOBAL"]


def test_a_name_matching_both_regexes_is_labels():
    rule_run = run(samples=1, labels_regex="y", predictions_regex="y")
    assert not feed(rule_run, "y", 0, data=np.array([0]))
    assert rule_run.states[("trial", ("0", "TRAIN"))].labels is not None


def test_more_than_max_classes_is_skipped(monkeypatch):
    monkeypatch.setattr("trainsentry.rules.class_imbalance.MAX_CLASSES", 3)
    rule_run = run(samples=1, threshold_imbalance=100)
    assert not pair(rule_run, 0, [0, 1, 2], [0, 1, 2])
    assert not pair(rule_run, 1, [3], [3])
    assert rule_run.rule.skipped == {"more than 3 classes": 1}


def test_huge_class_ids_are_shown_as_numbers_msgpack_can_carry():
    found = pair(run(samples=1, threshold_imbalance=1), 0, [1e300, 1e300, 2.0], [1e300, 1e300, 2.0])
    assert found[0].details["most_frequent"] == {"class": 1e300, "count": 2}
    assert found[0].details["least_frequent"] == {"class": 2, "count": 1}


@pytest.mark.parametrize("param, value", [("threshold_misprediction", 1.5), ("threshold_imbalance", 0.5),
                                          ("samples", 0), ("labels_regex", ""),
                                          ("predictions_regex", "("), ("argmax", "yes")])
def test_parameters_are_checked(param, value):
    with pytest.raises(ConfigError, match=f"ClassImbalance.*{param}"):
        ClassImbalance(**{param: value})
