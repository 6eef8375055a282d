"""The engine's caps: trials held, series per trial, state bytes; least recently active goes first."""

from __future__ import annotations

import pytest

from tests.rules.events import alerts, losses, scalar
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.engine.limits import EngineLimits
from trainsentry.protocol import LogEvent
from trainsentry.rules.config import Config, RuleConfig
from trainsentry.rules.metrics import MetricDefinition

CONFIG = Config(rules=(RuleConfig.of("LossNotDecreasing", num_steps=3),),
                metrics=(MetricDefinition("acc", r"acc=(\S+);"),))


def engine(**limits) -> Engine:
    return Engine(CONFIG, EngineLimits(**limits))


def test_opening_a_trial_beyond_the_cap_lets_the_least_recently_active_go() -> None:
    e = engine(max_trials=3)
    for trial in ("a", "b", "c"):
        e.process_many(losses([1.0] * 3, trial=trial))
    e.process(scalar("loss", 3, 1.0, trial="a"))  # a is active again: b is now the oldest
    e.process_many(losses([1.0] * 3, trial="d"))
    assert e.trials() == ["a", "c", "d"] and e.drain_evicted() == ["b"]
    e.process_many(losses([1.0] * 3, trial="e"))
    assert e.drain_evicted() == ["c"] and e.stats.evicted_trials == {"trials": 2}
    notices = [n for n in e.drain_notices() if "state released" in n]
    assert len(notices) == 2 and "'b'" in notices[0] and "max_trials" in notices[0]


def test_a_trial_that_comes_back_after_eviction_starts_afresh() -> None:
    flat = losses([1.0] * 10, trial="a")
    reference = alerts(engine(), flat[4:])
    e = engine(max_trials=1)
    e.process_many(flat[:4])
    e.process_many(losses([1.0] * 2, trial="b"))  # a goes
    assert [a.step for a in alerts(e, flat[4:])] == [a.step for a in reference]


def test_new_series_beyond_the_cap_are_refused_and_the_others_go_on() -> None:
    e = engine(max_series_per_trial=5)
    for index in range(8):
        e.process(scalar(f"loss{index}", 0, 1.0))
    assert e.stats.refused_series == 3
    assert len(e.store.find("run-1").tables["last step"].entries) == 5
    found = alerts(e, losses([1.0] * 10, name="loss0", start=1))
    assert found  # an existing series still alerts
    said = [n for n in e.drain_notices() if "max_series_per_trial" in n]
    assert len(said) == 1 and "'loss5' first" in said[0]


def test_log_streams_count_against_the_same_cap() -> None:
    e = engine(max_series_per_trial=2)
    for session in ("s1", "s2", "s3"):
        e.process(LogEvent("run-1", 1.0, "stdout", "acc=0.5;", 0, session=session))
    assert e.stats.refused_series == 1 and e.stats.metric_values == 2


def test_state_beyond_the_byte_cap_lets_the_oldest_trials_go_at_the_next_batch() -> None:
    probe = engine()
    probe.process_many(losses([1.0] * 3, trial="t0"))
    one = probe.state_bytes()
    e = engine(max_state_bytes=4 * one)
    for index in range(10):
        e.process_many(losses([1.0] * 3, trial=f"t{index}"))
    assert len(e.trials()) == 10  # only checked as a batch begins
    e.begin_batch()
    assert e.store.state_bytes() <= 4 * one
    assert e.trials()[-1] == "t9" and e.drain_evicted() == [f"t{i}" for i in range(10 - len(e.trials()))]
    assert e.stats.evicted_trials["bytes"] == 10 - len(e.trials())


def test_the_most_recent_trial_stays_whatever_its_size() -> None:
    e = engine(max_state_bytes=1)
    e.process_many(losses([1.0] * 3, trial="only"))
    e.begin_batch()
    assert e.trials() == ["only"]


def test_restored_trials_are_held_and_capped_like_the_others() -> None:
    e = engine(max_trials=2)
    e.process_many(losses([1.0] * 3, trial="a"))
    e.process(scalar("loss", 2**63 - 1, 1.0, trial="a"))  # an outlier pending in its state
    snapshot = e.snapshot(["a"])
    other = engine(max_trials=2)
    assert other.restore(snapshot) == ["a"]
    other.process_many(losses([1.0] * 3, trial="b"))
    other.process_many(losses([1.0] * 3, trial="c"))
    assert other.trials() == ["b", "c"] and other.drain_evicted() == ["a"]


@pytest.mark.parametrize("field, value", [("max_trials", 0), ("max_state_bytes", -1),
                                          ("max_series_per_trial", 1.5),
                                          ("metric_batch_budget_ms", 0)])
def test_limits_refuse_values_that_cannot_be_caps(field: str, value) -> None:
    with pytest.raises(ValueError, match=field):
        EngineLimits(**{field: value})


def test_a_trial_let_go_and_back_within_one_batch_is_not_reported_let_go() -> None:
    e = engine(max_trials=1)
    e.process_many(losses([1.0] * 2, trial="a"))
    e.process_many(losses([1.0] * 2, trial="b"))  # a goes
    e.process_many(losses([1.0] * 2, trial="a"))  # b goes, a is back
    assert e.drain_evicted() == ["b"] and e.trials() == ["a"]
    assert e.stats.evicted_trials == {"trials": 2}
