"""WeightUpdateRatio: pairing, strict thresholds, float32, infinities, NaN, modes, selection."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.rules.events import alerts, engine_for, steps, tensor
from trainsentry.rules.weight_update_ratio import WeightUpdateRatio


def weights(series, **fields):
    """(step, array) pairs -> tensor events of the 'weights' collection."""
    fields.setdefault("collections", ("weights",))
    name = fields.pop("name", "fc.weight")
    return [tensor(name, step, data, **fields) for step, data in series]


def test_ratio_is_update_norm_over_weight_norm_plus_epsilon():
    w0 = np.array([[3.0, 0.0], [0.0, 4.0]])          # norm 5
    w1 = w0 + np.array([[0.0, 36.0], [48.0, 0.0]])   # update norm 60
    found = alerts(engine_for("WeightUpdateRatio"), weights([(0, w0), (1, w1)]))
    assert found[0].details["ratio"] == pytest.approx(60 / (5 + 1e-9), rel=1e-15)
    assert found[0].details["update_norm"] == 60.0 and found[0].details["weight_norm"] == 5.0


@pytest.mark.parametrize("new, fires", [(11.0, False), (11.000001, True)])
def test_large_threshold_is_strict(new, fires):
    found = alerts(engine_for("WeightUpdateRatio", epsilon=0),
                   weights([(0, [1.0]), (1, [new])]))
    assert bool(found) is fires


@pytest.mark.parametrize("threshold, fires", [(2.0**-20, False), (2.0**-19, True)])
def test_small_threshold_is_strict(threshold, fires):
    found = alerts(engine_for("WeightUpdateRatio", epsilon=0, small_threshold=threshold),
                   weights([(0, [1.0]), (1, [1.0 + 2.0**-20])]))
    assert bool(found) is fires


def test_unchanged_weights_fire_as_too_small():
    found = alerts(engine_for("WeightUpdateRatio"), weights([(0, [0.5, 0.25]), (1, [0.5, 0.25])]))
    assert found[0].details["ratio"] == 0.0 and "small_threshold" in found[0].details


def test_float32_update_too_small_to_change_stored_weights_fires_as_too_small():
    w0 = np.full(8, 1.0, dtype=np.float32)
    w1 = w0 + np.float32(1e-9)  # below float32 resolution at 1.0: the same stored values
    assert np.array_equal(w0, w1)
    found = alerts(engine_for("WeightUpdateRatio"), weights([(0, w0), (1, w1)]))
    assert steps(found) == [1] and found[0].details["ratio"] == 0.0


def test_float32_values_are_compared_in_float64():
    w0 = np.full(4, 1.0, dtype=np.float32)
    w1 = w0 + np.float32(2.0**-20)  # representable: a real, tiny update
    found = alerts(engine_for("WeightUpdateRatio", epsilon=0, small_threshold=1e-7),
                   weights([(0, w0), (1, w1)]))
    assert found == []  # 2**-20 ~ 9.5e-7 is not < 1e-7


def test_infinite_change_fires_as_large():
    found = alerts(engine_for("WeightUpdateRatio"), weights([(0, [1.0, 2.0]), (1, [math.inf, 2.0])]))
    assert found[0].details["ratio"] == math.inf and "large_threshold" in found[0].details


def test_nan_never_fires():
    found = alerts(engine_for("WeightUpdateRatio"),
                   weights([(0, [1.0, 2.0]), (1, [math.nan, 2.0]), (2, [math.nan, 2.0])]))
    assert found == []


def test_pairs_with_previous_saved_step_without_num_steps():
    found = alerts(engine_for("WeightUpdateRatio"), weights([(0, [1.0]), (50, [1.0])]))
    assert [(a.step, a.details["previous_step"]) for a in found] == [(50, 0)]


@pytest.mark.parametrize("num_steps, evaluated", [(4, []), (5, [5, 10]), ("6", [5, 10])])
def test_num_steps_pairs_only_within_reach(num_steps, evaluated):
    series = [(0, [1.0]), (5, [1.0]), (10, [1.0])]
    found = alerts(engine_for("WeightUpdateRatio", num_steps=num_steps), weights(series))
    assert steps(found) == evaluated


def test_num_steps_uses_newest_saved_step_in_reach():
    series = [(0, [1.0]), (2, [100.0]), (3, [100.0])]
    found = alerts(engine_for("WeightUpdateRatio", num_steps=3), weights(series))
    # step 3 pairs with 2 (unchanged: too small), not with 0 (a large change)
    assert [(a.step, a.details["previous_step"]) for a in found] == [(2, 0), (3, 2)]


def test_only_train_and_global_written_series_eval_and_predict_ignored():
    events = []
    for mode in ("TRAIN", "EVAL", "PREDICT", "GLOBAL"):
        events += weights([(0, [1.0]), (1, [1.0])], mode=mode)
    assert sorted(a.mode for a in alerts(engine_for("WeightUpdateRatio"), events)) == [
        "GLOBAL", "TRAIN"]


def test_selection_default_weights_collection_united_with_regex():
    rule = WeightUpdateRatio(tensor_regex="embedding")
    assert rule.selects("fc.weight", ("weights",)) and rule.selects("embedding.w", ())
    assert not rule.selects("fc.bias", ("biases",))
    replaced = WeightUpdateRatio(collection_names="biases")
    assert replaced.selects("fc.bias", ("biases",)) and not replaced.selects("fc.weight", ("weights",))


def test_shape_change_is_skipped_and_counted():
    engine = engine_for("WeightUpdateRatio")
    assert alerts(engine, weights([(0, [1.0, 2.0]), (1, [1.0, 2.0, 3.0]), (2, [1.0, 2.0, 300.0])])) != []
    assert engine.stats.skipped == {"WeightUpdateRatio: shape changed": 1}


def test_keeps_one_previous_tensor_per_weight():
    engine = engine_for("WeightUpdateRatio", num_steps=3)
    empty = engine.store.state_bytes()  # the trials' state (the engine adds its route caches)
    engine.process_many(weights([(step, np.full(10, float(step + 1))) for step in range(100)]))
    assert len(engine.store.find("run-1").tables[0].entries) == 1  # rule 0's states: one series
    held = engine.store.state_bytes()
    engine.process_many(weights([(step, np.full(10, float(step + 1))) for step in range(100, 200)]))
    assert engine.store.state_bytes() == held >= empty + 80   # one tensor of 10 float64, not more
    engine.forget_trial("run-1")
    assert engine.store.state_bytes() == empty
