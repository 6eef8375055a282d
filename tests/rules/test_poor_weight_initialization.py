"""PoorWeightInitialization: the three checks, their boundaries, NaN, the steps limit and modes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.rules.events import alerts, engine_for, losses, steps, tensor
from trainsentry.consumers.state import deep_size
from trainsentry.protocol import TensorEvent
from trainsentry.rules.base import Observation
from trainsentry.rules.poor_weight_initialization import PoorWeightInitialization
from trainsentry.rules.rule_run import RuleRun


def spread(variance: float, n: int = 1000) -> np.ndarray:
    """Values with exactly ``variance`` (population): +-sqrt(variance), half each."""
    return np.tile([math.sqrt(variance), -math.sqrt(variance)], n // 2)


def activations(step, *variances, mode="TRAIN"):
    return [tensor(f"l{i}.relu_input", step, spread(v), mode=mode) for i, v in enumerate(variances)]


def checks(found):
    return [sorted(a.details["checks"]) for a in found]


# --- 1. variance spread -------------------------------------------------------------------------

@pytest.mark.parametrize("variances, threshold, fires", [
    ((1.0, 9.0), 9, False), ((1.0, 9.0), "8.999", True), ((1.0, 10.5), None, True),
    ((4.0, 1.0, 36.0), 36, False), ((4.0, 1.0, 36.0), 35.9, True)])
def test_variance_spread_is_strictly_above_threshold(variances, threshold, fires):
    params = {} if threshold is None else {"threshold": threshold}
    found = alerts(engine_for("PoorWeightInitialization", **params), activations(0, *variances))
    assert bool(found) is fires


def test_variance_spread_needs_two_layers():
    assert alerts(engine_for("PoorWeightInitialization"), activations(0, 0.0)) == []


def test_variance_zero_minimum_with_positive_maximum_is_infinite_and_fires():
    found = alerts(engine_for("PoorWeightInitialization"), activations(0, 0.0, 1e-12))
    assert found[0].details["checks"]["variance_spread"]["ratio"] == math.inf


def test_variance_all_zero_is_zero_over_zero_and_does_not_fire():
    assert alerts(engine_for("PoorWeightInitialization"), activations(0, 0.0, 0.0, 0.0)) == []


def test_variance_nan_layer_is_left_out():
    events = [tensor("a.relu_input", 0, [math.nan, 1.0]), *activations(0, 1.0)]
    assert alerts(engine_for("PoorWeightInitialization"), events) == []  # one layer left


def test_variance_from_the_writers_reduction():
    events = [TensorEvent("run-1", 0.0, "TRAIN", 0, f"l{i}.relu_input", reductions={"variance": v})
              for i, v in enumerate([1.0, 100.0])]
    found = alerts(engine_for("PoorWeightInitialization"), events)
    assert found[0].details["checks"]["variance_spread"]["ratio"] == 100.0


def test_variance_compares_layers_of_the_same_step_only():
    events = activations(0, 1.0) + activations(1, 50.0)  # l0 at 0, l0 at 1: one layer each step
    assert alerts(engine_for("PoorWeightInitialization"), events) == []


def test_activation_regex_parameter():
    events = [tensor("a.tanh_input", 0, spread(1.0)), tensor("b.tanh_input", 0, spread(20.0))]
    assert alerts(engine_for("PoorWeightInitialization"), events) == []
    found = alerts(engine_for("PoorWeightInitialization", activation_inputs_regex="tanh_input"), events)
    assert found[0].tensors == ("b.tanh_input", "a.tanh_input")


# --- 2. gradient spread -------------------------------------------------------------------------

def gradient(step, values, **fields):
    return tensor("fc.weight.grad", step, values, collections=("gradients",), **fields)


def test_gradient_spread_percentiles_linear_strict():
    values = np.linspace(0.0, 1.0, 101)         # p5 = 0.05, p95 = 0.95: spread 0.9
    assert alerts(engine_for("PoorWeightInitialization", distribution_range=0.9), [gradient(0, values)]) == []
    found = alerts(engine_for("PoorWeightInitialization", distribution_range=0.9000001),
                   [gradient(0, values)])
    assert found[0].details["checks"]["gradient_spread"]["spread"] == pytest.approx(0.9)


def test_gradient_spread_smallest_of_the_step_fires():
    events = [gradient(0, np.linspace(-1, 1, 50)),
              tensor("fc.bias.grad", 0, np.full(10, 0.3), collections=("gradients",))]
    found = alerts(engine_for("PoorWeightInitialization"), events)
    assert found[0].tensors == ("fc.bias.grad",) and checks(found) == [["gradient_spread"]]


def test_gradient_nan_percentile_is_left_out():
    assert alerts(engine_for("PoorWeightInitialization"), [gradient(0, [math.nan, 0.0, 0.0])]) == []


# --- 3. loss stagnation -------------------------------------------------------------------------

def test_loss_stagnation_patience_and_fires_at_every_analysed_step():
    values = [1.0, 1.0, 1.2, 1.1, 1.0, 1.05, 1.3, 1.4]     # best 1.0 at 0; never strictly below
    found = alerts(engine_for("PoorWeightInitialization"), losses(values))
    assert steps(found) == [5, 6, 7] and checks(found) == [["loss_stagnation"]] * 3


def test_loss_improvement_restarts_the_count():
    values = [1.0, 1.1, 1.1, 1.1, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert steps(alerts(engine_for("PoorWeightInitialization"), losses(values))) == [9]


def test_loss_nan_is_skipped_by_the_stagnation_check():
    values = [1.0, 1.1, math.nan, math.nan, 1.1, 1.1, 1.1, 1.1]
    assert steps(alerts(engine_for("PoorWeightInitialization"), losses(values))) == [7]


def test_patience_counts_saved_steps():
    found = alerts(engine_for("PoorWeightInitialization", patience=2, steps=100),
                   losses([1.0, 1.0, 1.0], every=20))
    assert steps(found) == [40]


# --- limits and modes ---------------------------------------------------------------------------

def test_only_steps_below_steps_are_analysed():
    found = alerts(engine_for("PoorWeightInitialization", steps=3),
                   [e for s in range(6) for e in activations(s, 1.0, 100.0)])
    assert steps(found) == [0, 1, 2]
    values = [1.0] * 20
    assert steps(alerts(engine_for("PoorWeightInitialization"), losses(values))) == [5, 6, 7, 8, 9]


def test_eval_and_predict_are_ignored_global_written_is_analysed():
    events = []
    for mode in ("TRAIN", "EVAL", "PREDICT", "GLOBAL"):
        events += activations(0, 1.0, 100.0, mode=mode)
    assert sorted(a.mode for a in alerts(engine_for("PoorWeightInitialization"), events)) == [
        "GLOBAL", "TRAIN"]


def test_two_workers_are_separate_groups():
    events = [tensor("a.relu_input", 0, spread(1.0), worker="0"),
              tensor("b.relu_input", 0, spread(100.0), worker="1")]
    assert alerts(engine_for("PoorWeightInitialization"), events) == []


def test_details_name_the_checks_that_fired_with_numbers():
    run = RuleRun(PoorWeightInitialization())
    obs = [Observation.of("a.relu_input", 0, data=spread(1.0)),
           Observation.of("b.relu_input", 0, data=spread(50.0), collections=("gradients",))]
    assert run.feed(obs[0]) is None
    finding = run.feed(obs[1])
    assert sorted(finding.details["checks"]) == ["variance_spread"]
    numbers = finding.details["checks"]["variance_spread"]
    assert (numbers["max_layer"], numbers["min_layer"], numbers["threshold"]) == (
        "b.relu_input", "a.relu_input", 10.0)
    assert numbers["ratio"] == pytest.approx(50.0)
    assert "variance spread" in finding.message


def test_forget_releases_state():
    engine = engine_for("PoorWeightInitialization")
    empty = engine.store.state_bytes()
    engine.process_many(losses([1.0] * 5))
    assert engine.store.find("run-1").tables[0].entries  # rule 0 holds the loss series' best
    engine.forget_trial("run-1")
    assert engine.trials() == [] and engine.store.state_bytes() == empty


def _initialisation(run, steps, workers=("0", "1"), n_losses=3):
    for step in steps:
        for worker in workers:
            for mode in ("TRAIN", "GLOBAL"):
                for i in range(3):
                    run.feed(Observation.of(f"l{i}.relu_input", step, data=spread(i + 1.0, 4),
                                            worker=worker, mode=mode))
                for i in range(n_losses):
                    run.feed(Observation.of(f"loss{i}", step, 1.0, worker=worker, mode=mode,
                                            collections=("losses",)))


def held(run) -> int:
    """Bytes of the states a run holds, as the engine's store sizes them."""
    return deep_size(run.states)


def test_state_is_released_after_the_analysed_steps():
    # README: nothing is kept past the first ``steps`` steps. A rule that saw the whole
    # initialisation holds, once every series passed ``steps``, what a rule holds that only ever
    # saw later steps: a marker per (worker, mode) group, whatever the number of loss series
    run = RuleRun(PoorWeightInitialization(steps=4))
    _initialisation(run, range(4))
    during = held(run)
    _initialisation(run, [4])
    after = held(run)
    late_only = RuleRun(PoorWeightInitialization(steps=4))
    _initialisation(late_only, [4, 5])
    assert after < during and after == held(late_only)
    many_losses, late_many = (RuleRun(PoorWeightInitialization(steps=4)),
                              RuleRun(PoorWeightInitialization(steps=4)))
    _initialisation(many_losses, range(5), n_losses=30)
    _initialisation(late_many, [4], n_losses=30)
    assert held(many_losses) == held(late_many)
    _initialisation(run, range(5, 50))
    assert held(run) == after                       # later steps add nothing either
    assert len(run.states) == 4                     # the 4 markers: 2 workers x 2 modes


def test_the_engine_holds_only_the_markers_once_past_the_analysed_steps():
    def at(step):
        return [event for worker in ("0", "1") for mode in ("TRAIN", "GLOBAL") for event in
                [tensor(f"l{i}.relu_input", step, spread(i + 1.0, 4), worker=worker, mode=mode)
                 for i in range(3)] + losses([1.0], start=step, worker=worker, mode=mode)]

    def rule_states(engine):  # rule 0's states in the trial, as the store holds them
        return deep_size(dict(engine.store.find("run-1").tables[0].entries))

    whole, late_only = engine_for("PoorWeightInitialization", steps=4), engine_for(
        "PoorWeightInitialization", steps=4)
    whole.process_many([event for step in range(4) for event in at(step)])
    during = rule_states(whole)
    whole.process_many(at(4) + at(5))
    late_only.process_many(at(4) + at(5))
    assert rule_states(whole) == rule_states(late_only) < during
    assert len(whole.store.find("run-1").tables[0].entries) == 4  # a marker per (worker, mode)


def test_a_loss_series_is_released_at_its_own_first_step_past_steps():
    run = RuleRun(PoorWeightInitialization(steps=3))
    for step in range(3):
        run.feed(Observation.of("loss", step, 1.0, collections=("losses",)))
        run.feed(Observation.of("aux_loss", step, 1.0, collections=("losses",)))
    run.feed(Observation.of("loss", 3, 1.0, collections=("losses",)))
    reference = RuleRun(PoorWeightInitialization(steps=3))
    for step in range(3):                                     # aux_loss may still fire at step 2
        reference.feed(Observation.of("aux_loss", step, 1.0, collections=("losses",)))
    reference.feed(Observation.of("loss", 3, 1.0, collections=("losses",)))
    assert held(run) == held(reference)
    run.feed(Observation.of("aux_loss", 3, 1.0, collections=("losses",)))
    late_only = RuleRun(PoorWeightInitialization(steps=3))
    late_only.feed(Observation.of("loss", 3, 1.0, collections=("losses",)))
    assert held(run) == held(late_only) < held(reference)


def test_released_group_leaves_out_an_activation_input_of_an_earlier_step():
    # once an activation input of the group reached ``steps``, the group's newest step is past the
    # analysed ones: an input of an earlier step is an older step of the group, left out and
    # counted like any other (it does not start the group afresh from the released state)
    rule = PoorWeightInitialization(steps=2)
    run = RuleRun(rule)
    assert run.feed(Observation.of("a.relu_input", 1, data=spread(1.0, 4))) is None
    assert run.feed(Observation.of("a.relu_input", 2, data=spread(1.0, 4))) is None
    assert run.feed(Observation.of("b.relu_input", 1, data=spread(100.0, 4))) is None
    assert run.feed(Observation.of("c.relu_input", 1, data=spread(1.0, 4))) is None
    assert rule.skipped == {"activation input of an earlier step": 2}
