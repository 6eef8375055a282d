"""Resumed runs: a new writer session restarts its series, and its rules fire again with new ids."""

from __future__ import annotations

import math

from tests.rules.events import T0, alerts, engine_for, scalar, tensor
from trainsentry.consumers.engine import Engine, alert_id
from trainsentry.protocol import LogEvent, ScalarEvent
from trainsentry.rules.config import Config, RuleConfig
from trainsentry.rules.metrics import MetricDefinition


def sessioned(events, session):
    for event in events:
        event.session = session
    return events


def losses(values, start=0, session=None, **fields):
    return sessioned([scalar("loss", start + i, v, ts=T0 + start + i, **fields)
                      for i, v in enumerate(values)], session)


def test_a_run_restarted_from_a_checkpoint_fires_its_rules_again():
    # the first writer: a NaN at step 5; it dies at step 6 and is restarted from step 3's checkpoint
    first = sessioned([tensor("fc.weight", s, [1.0, math.nan if s == 5 else 0.5],
                              collections=("weights",)) for s in range(7)], "first")
    resumed = sessioned([tensor("fc.weight", s, [1.0, math.nan if s == 5 else 0.5],
                                collections=("weights",), ts=T0 + 100 + s) for s in range(3, 7)],
                        "second")
    found = alerts(engine_for("ExplodingTensor"), first + resumed)
    assert [a.step for a in found] == [5, 5]
    assert found[0].id != found[1].id  # the resumed run's alert is not taken for a repeat
    assert found[1].id == alert_id("run-1", "ExplodingTensor", "0", "TRAIN", 5, "second")
    # the same events from one session: the resumed steps would be late, not evaluated
    same = sessioned([tensor("fc.weight", s, [1.0, math.nan if s == 5 else 0.5],
                             collections=("weights",)) for s in (*range(7), *range(3, 7))], "only")
    engine = engine_for("ExplodingTensor")
    assert [a.step for a in alerts(engine, same)] == [5]
    assert engine.stats.late + engine.stats.duplicate == 4


def test_a_series_window_starts_over_and_older_session_events_are_late():
    engine = engine_for("LossNotDecreasing", num_steps=2)
    first = losses([1.0, 0.9, 0.8, 0.7, 0.6, 0.5], session="a")      # falling: no alert
    second = losses([0.55, 0.56, 0.57], start=3, session="b")         # restarted at step 3
    straggler = losses([9.9], start=6, session="a")                   # the old writer, late
    found = alerts(engine, first + second + straggler)
    # the window restarted at step 3: step 5 (0.57) against step 3 (0.55), never against 0.6
    assert [(a.step, a.details["reference_step"], a.details["reference_value"]) for a in found] == [
        (5, 3, 0.55)]
    assert engine.stats.late == 1 and engine.stats.resumed_series == 1


def test_ids_without_a_session_are_as_they_always_were():
    (alert,) = alerts(engine_for("LossNotDecreasing", num_steps=1), losses([1.0, 1.0]))
    assert alert.id == alert_id("run-1", "LossNotDecreasing", "0", "TRAIN", 1)
    (with_session,) = alerts(engine_for("LossNotDecreasing", num_steps=1),
                             losses([1.0, 1.0], session="s"))
    assert with_session.id == alert_id("run-1", "LossNotDecreasing", "0", "TRAIN", 1, "s")
    assert with_session.id != alert.id


def test_a_rule_spanning_series_restarts_the_workers_state_once_per_session():
    # Overfit with patience 2: two evaluations above the ratio in a row are needed
    def run(session_of_second):
        events = (losses([1.0], session="a") + losses([1.2], mode="EVAL", session="a")
                  + losses([1.0], session=session_of_second)
                  + losses([1.2], mode="EVAL", session=session_of_second))
        return [(a.mode, a.step) for a in alerts(engine_for("Overfit", patience=2), events)]

    assert run("a") == []        # one session: TRAIN 0 and EVAL 0 again are duplicates
    assert run("b") == []        # a new session: the count starts over at its first value
    # within the new session the state is kept across its series: the second evaluation fires
    events = (losses([1.0], session="a") + losses([1.2], mode="EVAL", session="a")
              + losses([1.0], session="b") + losses([1.2, 1.3], mode="EVAL", session="b"))
    assert [(a.mode, a.step) for a in alerts(engine_for("Overfit", patience=2), events)] == [
        ("EVAL", 1)]


def test_stop_at_first_starts_afresh_in_a_new_session():
    engine = engine_for("LossNotDecreasing", num_steps=1, stop_at_first=True)
    events = (losses([1.0, 1.0, 1.0], session="a") + losses([1.0, 1.0, 1.0], session="b"))
    assert [a.step for a in alerts(engine, events)] == [1, 1]


def test_events_without_a_session_then_with_one_are_a_resumed_writer():
    engine = engine_for("LossNotDecreasing", num_steps=1)
    events = losses([1.0, 0.9]) + losses([1.0, 1.0], session="new")
    assert [(a.step, a.id) for a in alerts(engine, events)] == [
        (1, alert_id("run-1", "LossNotDecreasing", "0", "TRAIN", 1, "new"))]


def test_log_lines_are_taken_once_per_session_and_metric_series_restart():
    config = Config(rules=(RuleConfig.of("LossNotDecreasing", num_steps=1,
                                         collection_names="metrics"),),
                    metrics=(MetricDefinition("loss", r"loss=(\S+)"),))
    engine = Engine(config)

    def lines(values, session, seq0=0):
        return [LogEvent("run-1", T0 + i, "stdout", f"loss={v}", seq0 + i, session=session)
                for i, v in enumerate(values)]

    out = engine.process_many(lines([1.0, 0.5], "tap-a") + lines([1.0, 0.5], "tap-a")  # redelivered
                              + lines([0.4, 0.4], "tap-b"))  # a restarted tap: seq from 0 again
    metrics = [(e.name, e.step, e.value) for e in out if e.type == "metric"]
    assert metrics == [("loss", 0, 1.0), ("loss", 1, 0.5), ("loss", 2, 0.4), ("loss", 3, 0.4)]
    assert engine.stats.duplicate_log_lines == 2
    assert [(a.step, a.id) for a in out if a.type == "alert"] == [
        (3, alert_id("run-1", "LossNotDecreasing", "0", "GLOBAL", 3, "tap-b"))]


def test_a_taps_log_session_beside_the_hooks_value_session_is_no_resumed_run():
    # the tap (logs) and the hook (tensors) are two writer processes of one worker at once
    engine = engine_for("LossNotDecreasing", num_steps=1, stop_at_first=True)
    events = losses([1.0, 1.0], session="hook")
    events.insert(1, LogEvent("run-1", T0, "stdout", "hello", 0, session="tap"))
    events += losses([1.0], start=2, session="hook")
    assert [a.step for a in alerts(engine, events)] == [1]  # stopped, and not started afresh


def test_sessions_survive_a_snapshot():
    engine = engine_for("LossNotDecreasing", num_steps=2)
    first = losses([1.0, 0.9, 0.8, 0.7], session="a")
    engine.process_many(first + losses([0.75], start=2, session="b"))
    copy = engine_for("LossNotDecreasing", num_steps=2)
    copy.restore(engine.snapshot(engine.trials()))
    later = losses([0.76], start=3, session="b") + losses([0.1], start=5, session="a")
    assert [a.step for a in alerts(copy, later)] == []
    assert [a.step for a in alerts(copy, losses([0.77], start=4, session="b"))] == [4]
    assert copy.stats.late == 1


def test_a_scalar_event_carries_its_session_through_the_wire():
    from trainsentry.protocol import decode, encode
    event = ScalarEvent("run-1", T0, "TRAIN", 0, "loss", 1.0, session="abc")
    assert decode(encode(event)).session == "abc"
