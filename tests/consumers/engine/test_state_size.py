"""The engine's state size: what it reports follows what the process really holds.

``state_bytes`` is a gauge operators size memory limits by, and the figure trial eviction will be
decided by. It is measured here against the resident memory of a fresh process that takes many
small trials: the two growths must agree within a factor of 1.5 either way.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.rules.events import alerts, engine_for, losses, tensor
from trainsentry.consumers.engine import Engine
from trainsentry.rules.config import Config

# Runs in a fresh interpreter: nothing else in it holds memory that comes and goes. Each trial
# takes two values of a loss and, with "logs", a log line holding a metric that is the objective.
_GROWTH = """
import gc, json, os, sys
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.engine.limits import EngineLimits
from trainsentry.protocol import LogEvent, ScalarEvent
from trainsentry.rules.config import Config, RuleConfig
from trainsentry.rules.metrics import MetricDefinition
from trainsentry.rules.objective import Objective

def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

trials, logs = int(sys.argv[1]), sys.argv[2] == "logs"
metrics = (MetricDefinition("acc", r"acc=(\\S+);"),) if logs else ()
engine = Engine(Config(rules=(RuleConfig.of("LossNotDecreasing"),), metrics=metrics,
                       objective=Objective("acc", "Maximize") if logs else None),
                EngineLimits(max_trials=10 * trials + 10_000))  # every trial held: no eviction
def feed(first, last):
    for i in range(first, last):
        trial = f"trial-{i:07d}"
        for step in range(2):
            engine.process(ScalarEvent(trial, 1e9 + step, "TRAIN", step, "loss", 1.0 - 0.1 * step,
                                       "0", None, ("losses",)))
        if logs:
            engine.process(LogEvent(trial, 1e9 + 2, "stdout", f"acc={i % 100 / 100};", 0))
feed(0, 1000)  # the routes, the code paths and the allocator's first arenas
gc.collect()
rss, gauge = resident(), engine.state_bytes()
feed(1000, 1000 + trials)
gc.collect()
print(json.dumps({"gauge": engine.state_bytes() - gauge, "rss": resident() - rss,
                  "trials": len(engine.trials()), "metrics": engine.stats.metric_values}))
"""


@pytest.mark.parametrize("trials, logs", [(100_000, "scalars"), (30_000, "logs")])
def test_state_bytes_grows_with_the_resident_memory_of_many_small_trials(trials, logs):
    run = subprocess.run([sys.executable, "-c", _GROWTH, str(trials), logs], capture_output=True,
                         text=True, check=True)
    grown = json.loads(run.stdout)
    assert grown["trials"] == trials + 1000
    assert grown["metrics"] == (trials + 1000 if logs == "logs" else 0)
    assert grown["rss"] > trials * 1000  # it did hold something per trial
    assert 1 / 1.5 <= grown["gauge"] / grown["rss"] <= 1.5, grown


def test_forget_trial_returns_the_state_to_what_it_was():
    engine = engine_for("LossNotDecreasing")
    engine.process_many(losses([1.0] * 5, trial="a"))
    one = engine.state_bytes()
    engine.process_many(losses([1.0] * 5, trial="b"))
    assert engine.state_bytes() > one
    engine.forget_trial("b")
    assert engine.state_bytes() == one and engine.trials() == ["a"]


def test_state_follows_a_rule_window_up_and_down():
    engine = engine_for("LossNotDecreasing", num_steps=50)
    engine.process_many(losses([1.0] * 2))
    small = engine.state_bytes()
    engine.process_many(losses([1.0] * 60, start=2))  # the window holds num_steps + 1 values
    large = engine.state_bytes()
    assert large > small + 50 * 64   # a tuple of three numbers per value kept
    engine.forget_trial("run-1")
    assert engine.state_bytes() < small


def test_a_tensor_held_by_a_rule_counts_its_bytes():
    engine = Engine(Config.default())
    events = [tensor("fc.weight", s, np.full(16_384, 1.0, dtype=np.float32), collections=("weights",))
              for s in range(3)]
    alerts(engine, events)
    assert engine.state_bytes() > 65_536
