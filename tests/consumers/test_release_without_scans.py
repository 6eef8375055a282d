"""Releasing idle trials and expiring their gauges look at the due ones, never at every trial.

With 200,000 trials held, each turn of the sidecar's loop used to scan them all (31 % of a core
while idle). The trials are now kept least recently seen first, and each check stops at the first
one that is not due: the number of trials visited is counted here, not the time taken.
"""

from __future__ import annotations

from collections import OrderedDict

from tests.streams import write_config
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.observability import SidecarMetrics
from trainsentry.consumers.settings import KafkaSettings, SidecarOptions
from trainsentry.consumers.sidecar import Sidecar
from trainsentry.rules.config import load_config

TRIALS = 200_000


class CountedVisits(OrderedDict):
    """An OrderedDict that counts the items its ``items()`` iterations hand out."""

    visited = 0

    def items(self):
        for item in super().items():
            self.visited += 1
            yield item


def test_the_idle_check_visits_only_the_idle_trials_and_one_more(tmp_path, monkeypatch) -> None:
    sidecar = Sidecar(Engine(load_config(write_config(tmp_path))), KafkaSettings("127.0.0.1:1"),
                      SidecarOptions(idle_trial_seconds=60.0))
    clock = [1000.0]
    monkeypatch.setattr("trainsentry.consumers.sidecar.time.monotonic", lambda: clock[0])
    seen = CountedVisits((f"trial-{i}", 1000.0 + i * 1e-3) for i in range(TRIALS))
    sidecar._last_seen = seen
    sidecar._release_idle_trials()
    assert seen.visited == 1 and len(seen) == TRIALS  # none idle: one look
    clock[0] = 1000.0 + 60.0 + 4.5e-3  # the first five are idle now
    seen.visited = 0
    sidecar._release_idle_trials()
    assert seen.visited == 6 and len(seen) == TRIALS - 5
    assert next(iter(seen)) == "trial-5"


def test_expiring_the_gauges_of_released_trials_looks_at_the_due_ones_only() -> None:
    clock = [0.0]
    metrics = SidecarMetrics(objective_retention_seconds=300.0, clock=lambda: clock[0])
    expiring = CountedVisits()
    metrics._expiring = expiring
    for i in range(TRIALS):
        clock[0] = i * 1e-3
        metrics.forget_trial(f"trial-{i}")
    assert expiring.visited == TRIALS  # one look per release: the soonest, not yet due
    clock[0] = 300.0 + 9.5e-3  # the first ten are due
    expiring.visited = 0
    metrics.expire()
    assert expiring.visited == 11 and len(expiring) == TRIALS - 10
