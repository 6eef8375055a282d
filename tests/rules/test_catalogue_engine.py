"""The catalogue's rules in the engine: events in, alerts out, with the modes and steps alerts name."""

from __future__ import annotations

import math

import numpy as np

from tests.rules.events import alerts, engine_for, scalar, tensor
from trainsentry.protocol import AlertEvent, decode, encode


def fired(engine, events) -> list[tuple[str, int]]:
    found = alerts(engine, events)
    assert all(isinstance(decode(encode(a)), AlertEvent) for a in found)  # details travel
    return [(a.mode, a.step) for a in found]


def test_exploding_tensor_nan_loss_in_any_mode_but_predict():
    events = [scalar("loss", 0, 1.0), scalar("loss", 1, math.nan), scalar("loss", 0, math.nan, mode="EVAL"),
              scalar("loss", 0, math.nan, mode="PREDICT")]
    assert fired(engine_for("ExplodingTensor"), events) == [("TRAIN", 1), ("EVAL", 0)]


def test_one_alert_per_step_whatever_the_number_of_tensors_that_fire():
    events = [tensor(name, 3, [math.inf], collections=("weights",)) for name in ("a", "b", "c")]
    found = alerts(engine_for("ExplodingTensor"), events)
    assert [(a.step, a.tensors) for a in found] == [(3, ("a",))]


def test_vanishing_gradient_ignores_eval():
    events = [tensor("g", 5, [1e-8, -1e-8, 0, 2e-8], collections=("gradients",)),
              tensor("g", 5, [0.0], collections=("gradients",), mode="EVAL")]
    assert fired(engine_for("VanishingGradient"), events) == [("TRAIN", 5)]


def test_unchanged_tensor_vector_and_a_duplicate_step_is_not_a_saved_step():
    events = [tensor("fc.bias", s, [0.5]) for s in (0, 1, 1, 2, 3)]
    assert fired(engine_for("UnchangedTensor", tensor_regex="bias"), events) == [("TRAIN", 2),
                                                                                 ("TRAIN", 3)]


def test_overfit_vector_alerts_in_eval_mode_at_eval_steps():
    written = [("TRAIN", 0, 1.0), ("TRAIN", 1, 1.0), ("EVAL", 0, 1.05), ("TRAIN", 2, 1.0),
               ("EVAL", 1, 1.2), ("EVAL", 2, 1.3)]
    events = [scalar("loss", step, value, mode=mode, ts=1000.0 + i)
              for i, (mode, step, value) in enumerate(written)]
    found = alerts(engine_for("Overfit"), events)
    assert [(a.mode, a.step, a.event_ts) for a in found] == [("EVAL", 1, 1004.0), ("EVAL", 2, 1005.0)]


def test_overtraining_fires_in_the_mode_of_the_value_that_made_it_true():
    written = [("TRAIN", 0, 1.0), ("EVAL", 0, 1.0), ("TRAIN", 1, 1.0), ("EVAL", 1, 1.0),
               ("TRAIN", 2, 1.0)]
    events = [scalar("loss", step, value, mode=mode) for mode, step, value in written]
    engine = engine_for("Overtraining", patience_train=1, patience_validation=1)
    assert fired(engine, events) == [("EVAL", 1), ("TRAIN", 2)]


def test_class_imbalance_vector_and_its_alert_encodes():
    labels = np.array([0] * 990 + [1] * 10, dtype=np.int64)
    events = [tensor("labels", 0, labels), tensor("predictions", 0, labels)]
    (alert,) = alerts(engine_for("ClassImbalance"), events)
    assert (alert.mode, alert.step, alert.tensors) == ("TRAIN", 0, ("labels", "predictions"))
    assert isinstance(decode(encode(alert)), AlertEvent)


def test_dead_relu_all_zero_and_tensor_variance_through_the_engine():
    batch = np.zeros((4, 3))
    assert fired(engine_for("DeadRelu"), [tensor("l.relu_output", 2, batch)]) == [("TRAIN", 2)]
    assert fired(engine_for("AllZero", tensor_regex="relu"), [tensor("l.relu_output", 2, batch)]) == [
        ("TRAIN", 2)]
    engine = engine_for("TensorVariance", tensor_regex="relu", min_threshold=1e-9)
    assert fired(engine, [tensor("l.relu_output", 2, batch, mode="EVAL")]) == [("EVAL", 2)]


def _stateful_streams():
    written = [("TRAIN", 0, 1.0), ("TRAIN", 1, 1.0), ("EVAL", 0, 1.05), ("TRAIN", 2, 1.0),
               ("EVAL", 1, 1.2), ("EVAL", 2, 1.3), ("TRAIN", 3, 1.0), ("EVAL", 3, 1.3)]
    losses = [scalar("loss", step, value, mode=mode) for mode, step, value in written]
    labels = np.array([0] * 990 + [1] * 10)
    return {
        ("UnchangedTensor", (("tensor_regex", "bias"),)): [tensor("fc.bias", s, [0.5]) for s in range(6)],
        ("Overfit", ()): losses,
        ("Overtraining", (("patience_train", 1), ("patience_validation", 1))): losses,
        ("ClassImbalance", (("samples", 1),)): [
            tensor(name, s, labels) for s in range(3) for name in ("labels", "predictions")],
    }


def test_states_survive_a_snapshot_at_any_point():
    for (rule_type, params), events in _stateful_streams().items():
        whole = alerts(engine_for(rule_type, **dict(params)), events)
        assert whole, rule_type
        for cut in range(1, len(events)):
            first = engine_for(rule_type, **dict(params))
            before = first.process_many(events[:cut])
            second = engine_for(rule_type, **dict(params))
            assert second.restore(first.snapshot(["run-1"])) == ["run-1"]
            after = alerts(second, events[cut:])
            assert [a.id for a in before if isinstance(a, AlertEvent)] + [a.id for a in after] == [
                a.id for a in whole], (rule_type, cut)
