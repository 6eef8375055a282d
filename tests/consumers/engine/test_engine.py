"""The engine: routing, ordering, one alert per step, ids, notices, trials and workers."""

from __future__ import annotations

import dataclasses

import numpy as np

from tests.rules.events import T0, alerts, engine_for, losses, scalar, steps, tensor
from trainsentry.consumers.engine import FIRED_STEPS_KEPT, SELECTION_NOTICE_AFTER, Engine, alert_id
from trainsentry.consumers.engine.trial import FIRED
from trainsentry.protocol import AlertEvent, LogEvent, MetricEvent, decode, encode
from trainsentry.rules.base import ALL, MODES, TRAIN, Finding, Rule
from trainsentry.rules.config import Config, RuleConfig
from trainsentry.rules.metrics import MetricDefinition
from trainsentry.rules.objective import Objective
from trainsentry.rules.registry import RULES


def rising(**fields):
    return losses([1.0, 1.0, 2.0, 3.0], **fields)


def test_alert_fields_ids_and_timestamps_are_deterministic():
    events = rising()
    first = alerts(engine_for("LossNotDecreasing", "stalled", num_steps=1), events)
    again = alerts(engine_for("LossNotDecreasing", "stalled", num_steps=1), events)
    assert first == again
    alert = first[0]
    assert (alert.rule, alert.rule_type, alert.mode, alert.step, alert.worker) == (
        "stalled", "LossNotDecreasing", "TRAIN", 1, "0")
    assert alert.id == alert_id("run-1", "stalled", "0", "TRAIN", 1)
    assert alert.ts == alert.event_ts == T0 + 1
    assert decode(encode(alert)) == dataclasses.replace(alert, details=alert.details)


def test_ids_differ_by_trial_rule_worker_mode_and_step():
    base = ("run-1", "r", "0", "TRAIN", 1)
    ids = {alert_id(*base)}
    for i, other in enumerate(["run-2", "q", "1", "EVAL", 2]):
        key = list(base)
        key[i] = other
        ids.add(alert_id(*key))
    assert len(ids) == 6


def test_late_and_duplicate_steps_are_counted_reported_and_never_folded_in():
    engine = engine_for("LossNotDecreasing", num_steps=1)
    events = [scalar("loss", 0, 1.0), scalar("loss", 2, 0.5), scalar("loss", 1, 9.0),
              scalar("loss", 2, 9.0), scalar("loss", 3, 0.4)]
    assert alerts(engine, events) == []
    assert (engine.stats.late, engine.stats.duplicate) == (1, 1)
    notices = engine.drain_notices()
    assert sum("late step 1" in n for n in notices) == 1
    assert sum("duplicate step 2" in n for n in notices) == 1
    assert any("ignored 1 late and 1 duplicate" in n for n in notices)
    assert engine.drain_notices() == []


def test_late_step_notice_is_said_once_per_trial():
    engine = engine_for("LossNotDecreasing", num_steps=1)
    engine.process_many([scalar("loss", 5, 1.0), scalar("loss", 1, 1.0), scalar("loss", 2, 1.0)])
    assert len([n for n in engine.drain_notices() if "late" in n]) == 1
    assert engine.stats.late == 2


def test_one_alert_per_step_across_tensors_and_never_retracted():
    engine = engine_for("LossNotDecreasing", num_steps=1)
    events = [scalar("a", 0, 1.0), scalar("b", 0, 1.0), scalar("a", 1, 2.0), scalar("b", 1, 3.0)]
    found = alerts(engine, events)
    assert [(a.step, a.tensors) for a in found] == [(1, ("a",))]
    assert engine.stats.alerts == {"LossNotDecreasing": 1}


def test_every_firing_evaluation_alerts_unless_stop_at_first():
    assert steps(alerts(engine_for("LossNotDecreasing", num_steps=1), rising())) == [1, 2, 3]
    engine = engine_for("LossNotDecreasing", num_steps=1, stop_at_first="True")
    assert steps(alerts(engine, rising() + rising(trial="run-2"))) == [1, 1]
    # stopped trials release their windows: no state of rule 0 (slot 0) is left in either trial
    assert [0 in engine.store.find(trial).tables for trial in ("run-1", "run-2")] == [False, False]


def test_two_workers_are_separate_series_and_alerts_name_the_worker():
    engine = engine_for("LossNotDecreasing", num_steps=1)
    w0 = losses([1.0, 0.5, 0.2], worker="0")
    w1 = losses([1.0, 1.5, 0.2], worker="1")
    found = alerts(engine, [e for pair in zip(w0, w1, strict=True) for e in pair])
    assert [(a.worker, a.step) for a in found] == [("1", 1)]
    assert found[0].id != alert_id("run-1", "LossNotDecreasing", "0", "TRAIN", 1)


def test_two_trials_interleaved_equal_each_trial_alone():
    a = losses([1.0, 1.0, 0.5, 0.7, 0.7], trial="a")
    b = losses([3.0, 2.0, 2.5, 2.5, 1.0], trial="b")
    together = alerts(engine_for("LossNotDecreasing", num_steps=1),
                      [e for pair in zip(a, b, strict=True) for e in pair])
    alone = (alerts(engine_for("LossNotDecreasing", num_steps=1), a)
             + alerts(engine_for("LossNotDecreasing", num_steps=1), b))
    assert sorted(together, key=lambda x: x.id) == sorted(alone, key=lambda x: x.id)


def test_forget_trial_releases_its_state_and_only_its_state():
    engine = engine_for("LossNotDecreasing")
    engine.process_many(losses([1.0] * 5, trial="a") + losses([1.0] * 5, trial="b"))
    both = engine.state_bytes()
    engine.forget_trial("a")
    one = engine.state_bytes()
    engine.forget_trial("b")
    assert both > one > engine.state_bytes()
    # a forgotten trial starts afresh: its old steps are not "late"
    engine.process_many(losses([1.0] * 5, trial="a"))
    assert engine.stats.late == 0


def test_rule_that_selects_nothing_says_so_once():
    engine = engine_for("LossNotDecreasing")
    weights = [tensor("fc.weight", s, np.ones(2), collections=("weights",))
               for s in range(SELECTION_NOTICE_AFTER + 5)]
    engine.process_many(weights)
    notices = engine.drain_notices()
    assert len(notices) == 1 and "'LossNotDecreasing'" in notices[0] and "losses" in notices[0]
    engine.end_of_input()
    assert not any("selects no series" in n for n in engine.drain_notices())


def test_rule_that_selects_nothing_is_reported_at_end_of_input():
    engine = engine_for("WeightUpdateRatio")
    engine.process_many(losses([1.0, 2.0]))
    assert engine.drain_notices() == []
    engine.end_of_input()
    assert any("'WeightUpdateRatio'" in n and "selects no series" in n for n in engine.drain_notices())


def test_incoming_metric_and_alert_events_are_ignored():
    engine = engine_for("LossNotDecreasing", num_steps=1)
    alert = alerts(engine_for("LossNotDecreasing", num_steps=1), rising())[0]
    metric = MetricEvent("run-1", T0, "loss", 1.0, 0)
    assert engine.process(alert) == [] and engine.process(metric) == []
    assert engine.stats.events["alert"] == engine.stats.events["metric"] == 1


def test_no_rule_selects_fast_path_counts_unselected():
    engine = engine_for("WeightUpdateRatio")
    engine.process_many(losses([1.0] * 10))
    assert engine.stats.unselected == 10 and engine.stats.events["scalar"] == 10


def test_log_metrics_feed_rules_as_metrics_series():
    config = Config(rules=(RuleConfig.of("LossNotDecreasing", num_steps=1,
                                         collection_names="metrics", use_losses_collection=False),),
                    metrics=(MetricDefinition("val_loss", r"val_loss=(.*?);"),))
    engine = Engine(config)
    lines = ["val_loss=0.5;", "noise", "val_loss=0.4;", "val_loss=0.45;"]
    out = engine.process_many(LogEvent("run-1", T0 + i, "stdout", line, i) for i, line in enumerate(lines))
    metrics = [e for e in out if isinstance(e, MetricEvent)]
    assert [(m.name, m.value, m.step, m.ts) for m in metrics] == [
        ("val_loss", 0.5, 0, T0), ("val_loss", 0.4, 1, T0 + 2), ("val_loss", 0.45, 2, T0 + 3)]
    found = [e for e in out if isinstance(e, AlertEvent)]
    assert [(a.mode, a.step, a.tensors, a.event_ts) for a in found] == [
        ("GLOBAL", 2, ("val_loss",), T0 + 3)]
    assert out.index(found[0]) == 3  # an alert follows the metric that caused it


def test_redelivered_log_line_does_not_advance_a_metric_step():
    engine = Engine(Config(metrics=(MetricDefinition("loss", r"loss=(\S+)"),)))
    line = LogEvent("run-1", T0, "stdout", "loss=1.0", 0)
    again = LogEvent("run-1", T0, "stdout", "loss=1.0", 0)
    other_stream = LogEvent("run-1", T0, "stderr", "loss=2.0", 0)
    out = engine.process_many([line, again, other_stream])
    assert [(m.value, m.step) for m in out] == [(1.0, 0), (2.0, 1)]
    assert engine.stats.duplicate_log_lines == 1


def test_alerted_steps_are_bounded_and_never_repeat():
    engine = engine_for("LossNotDecreasing", num_steps=1)
    count = FIRED_STEPS_KEPT + 50
    found = alerts(engine, losses([1.0] * (count + 1)))
    assert steps(found) == list(range(1, count + 1))
    fired = engine.store.find("run-1").tables[FIRED].entries
    assert fired and all(len(f.steps) <= FIRED_STEPS_KEPT for f in fired.values())
    # a new series reaching back to a forgotten step is suppressed, not alerted twice
    again = alerts(engine, losses([1.0, 1.0], name="other_loss"))
    assert again == [] and engine.stats.suppressed_findings == 1


def test_skip_summary_is_said_once_across_end_of_input_calls():
    engine = engine_for("LossNotDecreasing")
    engine.process(tensor("loss", 0, [1.0, 2.0], collections=("losses",)))
    engine.end_of_input()
    assert any("not one element: 1 selected inputs skipped" in n for n in engine.drain_notices())
    engine.end_of_input()
    assert engine.drain_notices() == []


def test_tensor_values_are_shared_by_rules_on_one_array_without_copies():
    def run(elements):
        engine = Engine(Config(rules=(RuleConfig.of("WeightUpdateRatio"),
                                      RuleConfig.of("WeightUpdateRatio", "wur-3", num_steps=3))))
        events = [tensor("fc.weight", s, np.full(elements, 1.0, dtype=np.float32),
                         collections=("weights",)) for s in range(3)]
        return engine, alerts(engine, events)

    engine, found = run(1000)
    assert [(a.rule, a.step) for a in found] == [
        ("WeightUpdateRatio", 1), ("wur-3", 1), ("WeightUpdateRatio", 2), ("wur-3", 2)]
    # each rule holds the one previous tensor: a view on the event's bytes (4000 bytes each), so
    # the state is that of the same events with one-element tensors and 2 x 4000 bytes more
    one_element, _ = run(1)
    assert 8000 <= engine.state_bytes() - one_element.state_bytes() < 8000 + 20 * 200


def test_a_trial_ends_when_every_worker_has_sent_its_end_marker():
    engine = engine_for("LossNotDecreasing", "stalled", num_steps=1)
    engine.process_many(losses([1.0, 0.9], worker="0") + losses([1.0, 0.9], worker="1"))
    end = [LogEvent("run-1", T0 + 9, "stderr", "[trainsentry] end of worker", 0, worker, final=True)
           for worker in ("0", "1")]
    engine.process(end[0])
    assert engine.drain_ended() == []  # worker 1 still runs
    engine.process(end[1])
    assert engine.drain_ended() == ["run-1"]
    assert any("ended: its 2 worker(s)" in notice for notice in engine.drain_notices())
    # The state stays until the sidecar releases it: tensors still on their way are evaluated.
    assert alerts(engine, losses([0.95], worker="0", start=2)) != []
    held = engine.state_bytes()
    engine.forget_trial("run-1")
    assert engine.state_bytes() < held


def test_an_ended_trial_still_ranks_by_its_objective():
    config = Config(metrics=(MetricDefinition("val", r"val=(.*?);"),), objective=Objective("val"))
    engine = Engine(config)
    engine.process_many([LogEvent("run-1", T0, "stdout", "val=0.5;", 0),
                         LogEvent("run-1", T0 + 1, "stderr", "[trainsentry] done", 0, final=True)])
    assert engine.drain_ended() == ["run-1"]
    assert [(r.trial, r.final) for r in engine.objectives.ranking()] == [("run-1", 0.5)]


def test_a_restarted_writer_is_not_taken_for_repeated_lines():
    engine = Engine(Config(metrics=(MetricDefinition("val", r"val=(.*?);"),)))
    first = [LogEvent("run-1", T0 + i, "stdout", f"val={i};", i, session="a") for i in range(3)]
    again = [LogEvent("run-1", T0 + 9 + i, "stdout", f"val={9 + i};", i, session="b")
             for i in range(2)]
    metrics = [e for e in engine.process_many(first + first[1:] + again)
               if isinstance(e, MetricEvent)]
    # The repeats of session "a" are dropped; session "b" counts from seq 0 again, and the
    # metric's step goes on from where the first writer left it.
    assert [(m.value, m.step) for m in metrics] == [(0, 0), (1, 1), (2, 2), (9, 3), (10, 4)]
    assert engine.stats.duplicate_log_lines == 2


class _EveryValue(Rule):
    """A rule with state that fires at every value, in two views of every written mode."""

    rule_type = "EveryValue"
    params = {}

    def __init__(self, name=None, **values):
        super().__init__(name, **values)
        self.views_by_mode = {mode: (TRAIN, ALL) for mode in MODES}

    def selects(self, name, collections):
        return True

    def new_state(self):
        return []

    def observe(self, seen, obs):
        seen.append(obs.step)
        return Finding(obs.trial, obs.worker, obs.mode, obs.step, (obs.name,), "seen", {}, obs.ts)


def test_a_rule_stopped_at_its_first_alert_takes_nothing_more_even_in_the_same_event(monkeypatch):
    monkeypatch.setitem(RULES, "EveryValue", _EveryValue)
    engine = Engine(Config(rules=(RuleConfig.of("EveryValue", stop_at_first=True),)))
    found = alerts(engine, [scalar("loss", s, 1.0, global_step=s) for s in range(3)])
    assert [(a.mode, a.step) for a in found] == [("TRAIN", 0)]
    assert 0 not in engine.store.find("run-1").tables
    both = Engine(Config(rules=(RuleConfig.of("EveryValue"),)))
    assert len(alerts(both, [scalar("loss", s, 1.0, global_step=s) for s in range(3)])) == 6
