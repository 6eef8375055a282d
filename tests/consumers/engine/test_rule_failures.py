"""A rule that raises is disabled for its trial, said once; the other rules' verdicts are kept."""

from __future__ import annotations

import asyncio
import math
import sys
import textwrap

import pytest

from tests.rules.events import alerts, scalar
from trainsentry.consumers.driver import Driver
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.sinks.base import Sink
from trainsentry.consumers.sources.base import Batch, Part, Source
from trainsentry.rules.config import Config, RuleConfig, parse_config

BROKEN = textwrap.dedent("""
    from trainsentry.rules import Finding, Rule

    class Broken(Rule):
        '''Raises on a loss above 2: a bug in a rule of one's own.'''

        def selects(self, name, collections):
            return "losses" in collections

        def observe(self, state, obs):
            if obs.value > 2:
                raise ZeroDivisionError("the bug")
            return Finding(obs.trial, obs.worker, obs.mode, obs.step, (obs.name,), "seen",
                           {}, obs.ts)
    """)


@pytest.fixture
def broken_rules(tmp_path, monkeypatch):
    (tmp_path / "broken_rules.py").write_text(BROKEN)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield parse_config('[[rules]]\ntype = "broken_rules:Broken"\nname = "mine"\n'
                       '[[rules]]\ntype = "ExplodingTensor"\n')
    sys.modules.pop("broken_rules", None)


def test_a_user_rule_that_raises_is_disabled_for_its_trial_and_the_others_go_on(broken_rules):
    engine = Engine(broken_rules)
    events = [scalar("loss", 0, 1.0), scalar("loss", 1, 3.0), scalar("loss", 2, math.nan),
              scalar("loss", 3, 1.0), scalar("loss", 0, 3.0, trial="run-2"),
              scalar("loss", 1, 1.0, trial="run-2")]
    found = alerts(engine, events)
    # run-1: "mine" alerts at 0, raises at 1 (ExplodingTensor still sees it), is silent after;
    # run-2: disabled there too once it raises, but only from its own failure
    assert [(a.trial, a.rule, a.step) for a in found] == [
        ("run-1", "mine", 0), ("run-1", "ExplodingTensor", 2)]
    notices = [n for n in engine.drain_notices() if "raised" in n]
    assert len(notices) == 2  # once per trial
    assert notices[0].startswith("trial 'run-1': rule 'mine' (broken_rules:Broken) raised "
                                 "ZeroDivisionError: the bug at ")
    assert "broken_rules.py" in notices[0] and "step 1 of 'loss'" in notices[0]
    assert "disabled for this trial" in notices[0] and engine.stats.rule_failures == 2
    assert engine.process(scalar("loss", 9, 5.0)) == []  # still disabled: no second notice
    assert [n for n in engine.drain_notices() if "raised" in n] == []


def test_a_built_in_rule_that_raises_loses_no_other_verdict():
    engine = Engine(Config(rules=(RuleConfig.of("LossNotDecreasing", num_steps=1),
                                  RuleConfig.of("ExplodingTensor"))))

    def bug(state, obs):
        raise RuntimeError("a bug in a built-in rule")

    engine.rules[0].observe = bug
    found = alerts(engine, [scalar("loss", 0, 1.0), scalar("loss", 1, math.inf)])
    assert [(a.rule, a.step) for a in found] == [("ExplodingTensor", 1)]
    assert engine.stats.rule_failures == 1


def test_the_driver_sends_no_dead_letter_for_an_event_a_rule_raised_on(broken_rules):
    class Events(Source):
        def __init__(self, events):
            self.batches = [Batch([Part("mem", events=events)])]

        async def fetch(self):
            return self.batches.pop() if self.batches else None

    class Collected(Sink):
        def __init__(self):
            self.outputs, self.dead = [], []

        async def write_batch(self, outputs, dead_letters):
            self.outputs += outputs
            self.dead += dead_letters

    sink = Collected()
    events = [scalar("loss", 0, 3.0), scalar("loss", 1, math.nan)]
    assert asyncio.run(Driver(Engine(broken_rules), Events(events), [sink]).run())
    assert sink.dead == [] and [a.rule for a in sink.outputs] == ["ExplodingTensor"]
