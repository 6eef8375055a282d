"""What the caps let go is counted in Prometheus and forgotten by the sidecar's own books."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka import TopicPartition

from tests.rules.events import losses, scalar
from tests.streams import write_config
from trainsentry.consumers.driver import BatchOutcome
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.engine.limits import EngineLimits
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sidecar import Sidecar
from trainsentry.consumers.sources.base import Batch, Part
from trainsentry.rules.config import load_config


def test_evicted_trials_and_refused_series_are_exported_and_forgotten(tmp_path) -> None:
    engine = Engine(load_config(write_config(tmp_path)), EngineLimits(max_trials=2, max_series_per_trial=1))
    sidecar = Sidecar(engine, KafkaSettings("127.0.0.1:1"))
    sidecar.source.lag = lambda tp, next_offset: None  # no consumer: nothing to ask
    tp = TopicPartition("t.tensors", 0)
    trials = [f"trial-{i}" for i in range(5)]
    for trial in trials:
        engine.process_many(losses([1.0] * 2, trial=trial))
    engine.process(scalar("other", 0, 1.0, trial="trial-4"))  # a second series: refused
    record = SimpleNamespace(offset=0)
    sidecar.evaluated(Batch([Part(tp, [record])]), BatchOutcome([], [], {tp: set(trials)}, 0.0))
    assert set(sidecar._last_seen) == {"trial-3", "trial-4"}  # the evicted are forgotten
    assert sidecar._trials_by_tp[tp] == {"trial-3", "trial-4"}
    sidecar.delivered(Batch(), BatchOutcome([], [], {}, 0.0))
    sample = sidecar.metrics.registry.get_sample_value
    assert sample("trainsentry_evicted_trials", {"reason": "trials"}) == 3
    assert sample("trainsentry_refused_series_events") == 1
    assert sample("trainsentry_metric_lines_skipped") == 0
