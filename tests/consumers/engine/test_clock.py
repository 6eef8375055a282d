"""StalledTrainingRule and the engine's clock: the source's clock live, the newest ts in a replay."""

from __future__ import annotations

from trainsentry.consumers.engine import Engine
from trainsentry.protocol import AlertEvent, LogEvent, ScalarEvent, decode, encode
from trainsentry.rules.config import Config, RuleConfig

T0 = 1_700_000_000.0


def engine(threshold: float = 60.0, **params) -> Engine:
    return Engine(Config(rules=(RuleConfig.of("StalledTrainingRule", "stalled", threshold=threshold,
                                              **params),)))


def value(worker: str, step: int, ts: float, trial: str = "run-1", session: str | None = None):
    return ScalarEvent(trial, ts, "TRAIN", step, "loss", 1.0, worker, collections=("losses",),
                       session=session)


def line(worker: str, seq: int, ts: float, final: bool | None = None, trial: str = "run-1"):
    return LogEvent(trial, ts, "stdout", f"line {seq}", seq, worker, final=final)


def alerts_of(outputs) -> list[AlertEvent]:
    return [e for e in outputs if isinstance(e, AlertEvent)]


def live(engine: Engine, arrivals: list[tuple[float, object]], until: float) -> list[AlertEvent]:
    """The live sidecar: the clock once a second, and before each arrival, until ``until``."""
    found, now = [], arrivals[0][0]
    for at, event in arrivals:
        while now + 1.0 < at:  # nothing arrives: the clock moves all the same
            now += 1.0
            found += alerts_of(engine.advance_clock(now))
        now = at
        found += alerts_of(engine.advance_clock(at) + engine.process(event))
    while now < until:
        now += 1.0
        found += alerts_of(engine.advance_clock(now))
    return found


def two_workers(gap_after: float) -> list:
    """Worker 1 stops at step 5 (ts T0 + 5); worker 0 writes on every 10 s until ``gap_after``."""
    events = [value("1", step, T0 + step) for step in range(6)]
    events += [value("0", step, T0 + 10.0 * step) for step in range(int(gap_after // 10) + 1)]
    return sorted(events, key=lambda e: e.ts)


def test_replay_sees_a_stall_that_another_workers_events_reveal_once():
    found = alerts_of(engine().process_many(two_workers(gap_after=200)))
    assert len(found) == 1
    alert = found[0]
    assert (alert.rule, alert.rule_type, alert.worker, alert.mode, alert.step, alert.tensors) == (
        "stalled", "StalledTrainingRule", "1", "GLOBAL", 5, ())
    # the first event more than 60 s after worker 1's last one (T0 + 5) is worker 0's at T0 + 70
    assert alert.details == {"last_event_time": T0 + 5, "clock": T0 + 70, "gap": 65.0,
                             "threshold": 60.0, "last_step": 5, "stop_training": False}
    assert (alert.ts, alert.event_ts, alert.severity) == (T0 + 5, T0 + 5, "warning")
    assert "worker 1" in alert.message and "last step is 5" in alert.message
    assert isinstance(decode(encode(alert)), AlertEvent)


def test_live_and_replay_give_the_same_alerts_where_replay_can_see_the_stall():
    events = two_workers(gap_after=300)
    replayed = alerts_of(engine().process_many(events))
    # live: each event arrives at its ts; the clock also moves once a second between arrivals
    live_found = live(engine(), [(event.ts, event) for event in events], until=events[-1].ts)
    assert [a.id for a in live_found] == [a.id for a in replayed] and len(replayed) == 1
    assert (live_found[0].step, live_found[0].worker) == (5, "1")
    assert live_found[0].details["clock"] == T0 + 66  # the first reading more than 60 s after T0 + 5


def test_live_sees_a_stall_that_no_later_event_reveals():
    events = [value("0", step, T0 + step) for step in range(3)]
    assert alerts_of(engine().process_many(events)) == []  # nothing after: a replay cannot know
    found = live(engine(), [(event.ts, event) for event in events], until=T0 + 120)
    assert [(a.worker, a.step, a.details["clock"]) for a in found] == [("0", 2, T0 + 63)]


def test_a_new_event_rearms_and_a_second_stall_alerts_again():
    heartbeat = [value("1", step, T0 + 10.0 * step) for step in range(31)]  # every 10 s
    events = sorted(heartbeat + [value("0", 0, T0 + 0.5), value("0", 1, T0 + 110.5)],
                    key=lambda e: e.ts)
    found = alerts_of(engine().process_many(events))
    assert [(a.worker, a.step, a.details["clock"]) for a in found] == [
        ("0", 0, T0 + 70), ("0", 1, T0 + 180)]


def test_a_worker_whose_own_next_event_comes_late_was_stalled():
    # worker 0 alone: its event at T0 + 100 reveals the silence before it, as live would have seen
    found = alerts_of(engine().process_many([value("0", 0, T0), value("0", 1, T0 + 100)]))
    assert [(a.worker, a.step, a.details["gap"]) for a in found] == [("0", 0, 100.0)]


def test_a_worker_that_sent_its_end_marker_is_never_stalled_until_it_resumes():
    events = [value("0", 3, T0, session="a"), line("0", 0, T0 + 1, final=True),
              value("1", 0, T0 + 500)]
    assert alerts_of(engine().process_many(events)) == []
    resumed = events + [value("0", 0, T0 + 600, session="b"), value("1", 1, T0 + 700)]
    found = alerts_of(engine().process_many(resumed))
    assert [(a.worker, a.step) for a in found] == [("1", 0), ("0", 0)]
    # a log line of the worker counts as activity too
    quiet = [value("0", 0, T0), line("0", 0, T0 + 50), value("1", 0, T0 + 100)]
    assert alerts_of(engine().process_many(quiet)) == []


def test_stop_training_on_fire_severity_and_stop_at_first():
    events = two_workers(gap_after=100)
    (alert,) = alerts_of(engine(stop_training_on_fire="True", severity="error").process_many(events))
    assert alert.details["stop_training"] is True and alert.severity == "error"
    # stop_at_first: worker 2's stall is not reported after worker 1's
    three = sorted(events + [value("2", 0, T0 + 2)], key=lambda e: e.ts)
    assert len(alerts_of(engine().process_many(three))) == 2
    assert len(alerts_of(engine(stop_at_first=True).process_many(three))) == 1


def test_the_clock_never_goes_back_and_costs_nothing_for_workers_not_due():
    stalled = engine()
    rule = stalled.rules[0]
    calls = {"on_clock": 0}
    on_clock = rule.on_clock

    def counted(*args):
        calls["on_clock"] += 1
        return on_clock(*args)

    rule.on_clock = counted
    stalled.advance_clock(T0)
    for worker in range(2000):
        stalled.process(value(str(worker), 0, T0))
    for second in range(1, 60):
        assert stalled.advance_clock(T0 + second) == []
    assert calls["on_clock"] == 0  # none due: the heap is not scanned
    assert stalled.advance_clock(T0 + 30) == []  # back in time: nothing
    assert len(stalled.advance_clock(T0 + 61)) == 2000 and calls["on_clock"] == 2000


def test_a_restored_trial_stalls_and_a_forgotten_one_does_not():
    first = engine()
    first.advance_clock(T0)
    first.process(value("0", 4, T0))
    first.process(value("0", 0, T0, trial="run-2"))
    restored = engine()
    restored.restore(first.snapshot(["run-1"]))
    restored.advance_clock(T0 + 1)
    assert [(a.trial, a.step) for a in restored.advance_clock(T0 + 100)] == [("run-1", 4)]
    first.forget_trial("run-1")
    assert [a.trial for a in first.advance_clock(T0 + 100)] == ["run-2"]


def test_without_the_rule_the_clock_is_free():
    plain = Engine(Config(rules=(RuleConfig.of("LossNotDecreasing"),)))
    assert plain.advance_clock(T0) == [] and plain.process(value("0", 0, T0)) == []


def test_stop_at_first_starts_afresh_when_a_worker_resumes():
    events = [value("0", 0, T0, session="a"), value("1", 0, T0), value("1", 1, T0 + 100),
              value("0", 0, T0 + 110, session="b"), value("1", 2, T0 + 200)]
    found = alerts_of(engine(stop_at_first=True).process_many(events))
    assert [(a.worker, a.step, a.details["clock"]) for a in found] == [
        ("0", 0, T0 + 100), ("0", 0, T0 + 200)]
    assert found[0].id != found[1].id  # the resumed session's stall is its own
