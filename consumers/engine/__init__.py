"""The one rule engine behind the live sidecar and every replay: a pure function of the events.

Given the same events in the same order, :class:`Engine` returns the same outputs, field for field:
no I/O, no clock of its own (an alert's ``ts`` is the ``ts`` of the newest input event it used), no
asyncio. The one exception is a metric regex that runs out of its time budget, which is disabled
for its trial and reported. The one rule that judges time, StalledTrainingRule, reads the clock
its source gives (:meth:`Engine.advance_clock`; in a replay, the newest event ``ts``: :mod:`.clock`).

What it does with each input event:

- ``tensor`` / ``scalar`` (:mod:`.series`, routed by :mod:`.routing`): to the series of every rule
  that selects it, one series per (trial, worker, view, tensor). A step at or below the series'
  newest step is late (or a duplicate): counted, reported once per trial, never shown to a rule.
  Each rule's finding becomes an :class:`AlertEvent` unless that (trial, rule, worker, mode, step)
  already alerted in the event's writer session (:mod:`.alerts`). An event of a newer session
  restarts its series, one of an older session is late (:mod:`.sessions`). A rule that raises is
  disabled for the trial and the event goes on to the others (:mod:`.rule_failures`).
- ``log`` (:mod:`.logs`): de-duplicated by ``seq`` per (trial, worker, stream, session), then
  matched by the metric definitions; each value becomes a :class:`MetricEvent` and is fed back as a
  one-element series (collection ``metrics``, mode GLOBAL, step = how many values of that metric
  the (trial, worker) had before).
- ``metric`` / ``alert``: ignored (replay recomputes them).

With a rule that judges time (StalledTrainingRule), every ``tensor``, ``scalar`` and ``log`` event
is also heard by it first, and the clock moves (:mod:`.clock`).

A rule that has selected no series of a trial after :data:`SELECTION_NOTICE_AFTER` tensor and
scalar events of that trial (or at :meth:`Engine.end_of_input`) is reported once (:mod:`.notices`).
Everything kept per trial lives in one state store (:mod:`.trial` lists its slots), so forgetting,
sizing and snapshotting a trial (:mod:`.snapshot`) cover all of it.

>>> from trainsentry.protocol import ScalarEvent
>>> from trainsentry.rules.config import Config, RuleConfig
>>> engine = Engine(Config(rules=(RuleConfig.of("LossNotDecreasing", num_steps=2),)))
>>> events = [ScalarEvent("run-1", 100.0 + s, "TRAIN", s, "loss", v, collections=("losses",))
...           for s, v in enumerate([1.0, 0.9, 1.1])]
>>> [(a.rule, a.step, a.ts) for a in engine.process_many(events)]
[('LossNotDecreasing', 2, 102.0)]
>>> engine.process(events[1]), engine.stats.late
([], 1)
>>> copy = Engine(engine.config)
>>> copy.restore(engine.snapshot(["run-1"])), copy.process(events[1]), copy.trials()
(['run-1'], [], ['run-1'])
"""

from .alerts import FIRED_STEPS_KEPT, alert_id
from .engine import Engine
from .notices import SELECTION_NOTICE_AFTER
from .routing import ROUTE_CACHE_LIMIT
from .stats import EngineStats

__all__ = ["FIRED_STEPS_KEPT", "ROUTE_CACHE_LIMIT", "SELECTION_NOTICE_AFTER", "Engine",
           "EngineStats", "alert_id"]
