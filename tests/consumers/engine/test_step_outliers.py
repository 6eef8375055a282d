"""One event at a huge step does not silence its series (consumers/engine/steps.py)."""

from __future__ import annotations

from tests.rules.events import alerts, engine_for, losses, scalar, steps
from trainsentry.consumers.engine.steps import MAX_STEP_JUMP

HUGE = 2**63 - 1
FLAT = [1.0] * 40  # LossNotDecreasing (num_steps=3) fires again and again on a flat loss


def flat_engine():
    return engine_for("LossNotDecreasing", num_steps=3)


def test_a_stray_step_among_good_ones_changes_no_alert_and_no_id() -> None:
    events = losses(FLAT)
    reference = alerts(flat_engine(), events)
    assert reference
    engine = flat_engine()
    stray = scalar("loss", HUGE, 1.0)
    found = alerts(engine, events[:10] + [stray] + events[10:])
    assert [(a.id, a.step, a.details) for a in found] == [(a.id, a.step, a.details) for a in reference]
    stats = engine.stats
    assert (stats.implausible_steps, stats.step_jumps, stats.late) == (1, 0, 0)
    notices = engine.drain_notices()
    assert sum("more than 2^32 beyond its newest step 9" in n for n in notices) == 1


def test_a_stray_first_step_restarts_the_series_at_the_second_good_event() -> None:
    events = losses(FLAT)
    engine = flat_engine()
    found = alerts(engine, [scalar("loss", HUGE, 1.0)] + events)
    # Step 0 is late (below the stray step); step 1 continues it: the series restarts there.
    assert steps(found) == steps(alerts(flat_engine(), events[1:]))
    assert found and min(steps(found)) > 1
    assert (engine.stats.restarted_series, engine.stats.late) == (1, 1)


def test_a_real_jump_beyond_the_bound_is_taken_from_its_second_event() -> None:
    far = MAX_STEP_JUMP * 3
    before, after = losses(FLAT[:10]), losses(FLAT[:10], start=far)
    engine = flat_engine()
    found = alerts(engine, before + after)
    assert engine.stats.implausible_steps == 1 and engine.stats.step_jumps == 1
    assert [s for s in steps(found) if s >= far]  # the series went on after the jump
    assert far not in steps(found)  # its first event was not taken


def test_two_strays_far_apart_are_both_refused() -> None:
    events = losses(FLAT)
    engine = flat_engine()
    found = alerts(engine, events[:5] + [scalar("loss", HUGE - 5, 1.0)] + events[5:8]
                   + [scalar("loss", HUGE, 1.0)] + events[8:])
    assert steps(found) == steps(alerts(flat_engine(), events))
    assert engine.stats.implausible_steps == 2 and engine.stats.step_jumps == 0


def test_a_jump_within_the_bound_is_an_ordinary_step() -> None:
    engine = flat_engine()
    alerts(engine, losses(FLAT[:5]) + losses(FLAT[:5], start=MAX_STEP_JUMP + 4))
    assert (engine.stats.implausible_steps, engine.stats.step_jumps, engine.stats.late) == (0, 0, 0)
