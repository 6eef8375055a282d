"""UnchangedTensor: the window of saved steps, allclose's tolerance, NaN, shapes, modes, parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.rules.routed import feed
from trainsentry.rules.base import ConfigError
from trainsentry.rules.config import parse_config
from trainsentry.rules.rule_run import RuleRun
from trainsentry.rules.unchanged_tensor import UnchangedTensor


def run(**params) -> RuleRun:
    params.setdefault("tensor_regex", "w")
    return RuleRun(UnchangedTensor(**params))


def fired(rule_run: RuleRun, saved, **fields) -> list[int]:
    return [f.step for step, data in saved for f in feed(rule_run, "w", step, data=data, **fields)]


def test_vector_one_value_at_steps_0_to_3_fires_at_2_and_3():
    assert fired(run(), [(s, [0.5]) for s in range(4)]) == [2, 3]


def test_scalars_are_one_element_tensors():
    rule_run = run()
    assert [f.step for s in range(4) for f in feed(rule_run, "w", s, 0.5)] == [2, 3]


def test_saved_steps_need_not_be_consecutive():
    assert fired(run(), [(0, [1.0]), (5, [1.0]), (50, [1.0])]) == [50]


def test_every_earlier_step_of_the_window_must_be_close():
    assert fired(run(), [(0, [1.0]), (1, [2.0]), (2, [2.0]), (3, [2.0])]) == [3]


@pytest.mark.parametrize("earlier, current, fires", [
    (2.0, 3.0, True),     # |2 - 3| = 1 <= 0.5 * 3
    (3.0, 2.0, True),     # |3 - 2| = 1 <= 0.5 * 2: the boundary is close (<=)
    (3.125, 2.0, False),  # 1.125 > 1
])
def test_tolerance_is_relative_to_the_current_tensor_and_not_strict(earlier, current, fires):
    saved = [(0, [earlier]), (1, [current])]
    assert bool(fired(run(num_steps=2, rtol=0.5, atol=0.0), saved)) is fires


@pytest.mark.parametrize("change, fires", [(0.25, True), (0.25 + 2**-20, False)])
def test_absolute_tolerance_is_not_strict(change, fires):
    saved = [(0, [4.0]), (1, [4.0 + change])]
    assert bool(fired(run(num_steps=2, rtol=0, atol="0.25"), saved)) is fires


def test_default_tolerances_are_numpys():
    assert fired(run(), [(0, [1.0]), (1, [1.0 + 1e-6]), (2, [1.0])]) == [2]
    assert fired(run(), [(0, [1.0]), (1, [1.0 + 1e-4]), (2, [1.0])]) == []


def test_nan_is_close_to_nan_only_with_equal_nan():
    saved = [(s, [math.nan, 1.0]) for s in range(3)]
    assert fired(run(), saved) == []
    assert fired(run(equal_nan="True"), saved) == [2]


def test_an_infinity_is_close_only_to_itself():
    assert fired(run(), [(s, [math.inf]) for s in range(3)]) == [2]
    assert fired(run(), [(0, [math.inf]), (1, [-math.inf]), (2, [math.inf])]) == []


def test_a_changed_shape_is_a_change():
    assert fired(run(), [(0, [0.0, 0.0]), (1, [[0.0, 0.0]]), (2, [[0.0, 0.0]])]) == []


def test_integer_and_bool_tensors_are_compared_in_float64():
    assert fired(run(), [(s, np.array([2**62, 1], dtype=np.int64)) for s in range(3)]) == [2]
    assert fired(run(), [(s, np.array([True, False])) for s in range(3)]) == [2]


def test_skipped_inputs_take_no_step_in_the_series():
    rule_run = run()
    saved = [(0, [0.5]), (1, np.zeros((0, 2))), (2, [0.5]), (3, [0.5])]
    assert fired(rule_run, saved) == [3]
    assert not feed(rule_run, "w", 4, reductions={"mean": 0.5})
    assert rule_run.rule.skipped == {"empty tensor": 1, "reductions only": 1}


@pytest.mark.parametrize("mode, evaluated", [("TRAIN", True), ("EVAL", True), ("GLOBAL", True),
                                             ("PREDICT", False)])
def test_every_mode_but_predict_each_its_own_series(mode, evaluated):
    assert bool(fired(run(), [(s, [0.0]) for s in range(3)], mode=mode)) is evaluated


def test_modes_and_workers_are_separate_series():
    rule_run = run()
    for step in range(2):
        for mode in ("TRAIN", "EVAL"):
            for worker in ("0", "1"):
                assert not feed(rule_run, "w", step, data=[0.0], mode=mode, worker=worker)
    assert len(rule_run.states) == 4


def test_the_window_keeps_num_steps_minus_one_tensors():
    rule_run = run(num_steps=4)
    fired(rule_run, [(s, np.zeros(8)) for s in range(10)])
    (window,) = rule_run.states.values()
    assert [step for step, _ in window.saved] == [7, 8, 9]


def test_one_of_collection_names_and_tensor_regex_is_required():
    with pytest.raises(ConfigError) as error:
        UnchangedTensor()
    assert str(error.value) == ("rule 'UnchangedTensor' (UnchangedTensor): parameter "
                                "'collection_names': give collection_names or tensor_regex: "
                                "one is required")
    with pytest.raises(ConfigError, match="rule 'frozen' .*one is required"):
        parse_config('[[rules]]\ntype = "UnchangedTensor"\nname = "frozen"\ntensor_regex = ""\n')
    assert UnchangedTensor(collection_names="weights").selects("x", ("weights",))


def test_num_steps_is_at_least_two():
    with pytest.raises(ConfigError, match="num_steps.*must be >= 2"):
        UnchangedTensor(tensor_regex="w", num_steps="1")
