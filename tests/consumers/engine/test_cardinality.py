"""Hostile cardinality: 200,000 tensor names in one trial, 200,000 trials. With the default caps
(consumers/engine/limits.py) the resident memory stays under a stated bound.

Measured in a fresh interpreter fed as the sidecar feeds its engine: batches of 1,000 events, each
begun with ``begin_batch``, notices and evictions drained after each. Without the caps the same
streams grew the process by 126 and 430 MiB, and would grow with the stream; with them, by about
12 MiB (10,000 series of one trial) and 22 MiB (10,000 trials).
"""

from __future__ import annotations

import json
import subprocess
import sys

from trainsentry.consumers.engine.limits import DEFAULT_MAX_SERIES_PER_TRIAL, DEFAULT_MAX_TRIALS

COUNT = 200_000
MIB = 1024 * 1024

_FEED = """
import gc, json, os, sys
from trainsentry.consumers.engine import Engine
from trainsentry.protocol import ScalarEvent
from trainsentry.rules.config import Config, RuleConfig

def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

kind, count = sys.argv[1], int(sys.argv[2])
engine = Engine(Config(rules=(RuleConfig.of("LossNotDecreasing"),)))
def event(i):
    if kind == "names":
        return ScalarEvent("one-trial", 1e9, "TRAIN", 0, f"layer{i}.loss", 1.0, "0", None, ("losses",))
    return ScalarEvent(f"trial-{i:07d}", 1e9, "TRAIN", 0, "loss", 1.0, "0", None, ("losses",))
engine.process(event(-1))  # the code paths, the routes
gc.collect()
before = resident()
for first in range(0, count, 1000):
    engine.begin_batch()
    for i in range(first, first + 1000):
        engine.process(event(i))
    engine.drain_notices()
    engine.drain_evicted()
gc.collect()
stats = engine.stats
print(json.dumps({"grown": resident() - before, "trials": len(engine.trials()),
                  "series": len(engine.store.find(engine.trials()[-1]).tables["last step"].entries),
                  "refused": stats.refused_series, "evicted": stats.evicted_trials}))
"""


def feed(kind: str) -> dict:
    run = subprocess.run([sys.executable, "-c", _FEED, kind, str(COUNT)], capture_output=True,
                         text=True, check=True, timeout=600)
    return json.loads(run.stdout)


def test_two_hundred_thousand_names_in_one_trial_stay_under_48_mib() -> None:
    grown = feed("names")
    assert grown["series"] == DEFAULT_MAX_SERIES_PER_TRIAL
    assert grown["refused"] > 0
    assert grown["grown"] < 48 * MIB, grown


def test_two_hundred_thousand_trials_stay_under_48_mib() -> None:
    grown = feed("trials")
    assert grown["trials"] == DEFAULT_MAX_TRIALS
    assert grown["evicted"] == {"trials": COUNT + 1 - DEFAULT_MAX_TRIALS}
    assert grown["grown"] < 48 * MIB, grown
