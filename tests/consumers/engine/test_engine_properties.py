"""Engine properties: outputs depend only on each series' own order, never on interleaving."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.rules.events import alerts, losses, tensor
from trainsentry.consumers.engine import Engine
from trainsentry.protocol import AlertEvent, LogEvent, MetricEvent
from trainsentry.rules.config import Config
from trainsentry.rules.metrics import MetricDefinition
from trainsentry.rules.objective import Objective

STREAMS = {
    (trial, worker): losses([1.0, 0.9, 0.95, 0.95, 0.5, 0.7, 0.7, 0.2, 0.3, 0.3, 0.3, 0.3] * 2,
                            trial=trial, worker=worker, every=1)
    + [tensor("fc.weight", s, np.full(4, 1.0 + s * (trial == "b")), trial=trial, worker=worker,
              collections=("weights",)) for s in range(6)]
    for trial in ("a", "b") for worker in ("0", "1")
}


def engine() -> Engine:
    return Engine(Config.default())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(sorted(STREAMS)), min_size=200, max_size=200))
def test_any_interleaving_of_trials_and_workers_gives_the_same_alerts(order):
    cursors = {key: 0 for key in STREAMS}
    merged = []
    for key in order + sorted(STREAMS) * 40:
        if cursors[key] < len(STREAMS[key]):
            merged.append(STREAMS[key][cursors[key]])
            cursors[key] += 1
    alone = {a.id: a for key in sorted(STREAMS) for a in alerts(engine(), STREAMS[key])}
    together = alerts(engine(), merged)
    assert len(together) == len(alone)
    assert {a.id: a for a in together} == alone


# The engine has no notion of a batch (process_many is process in a loop), so "any batching gives
# the same outputs" could not fail. What can: the calls a sidecar makes between batches. Forgetting
# a trial whose events are all in must not change any other trial's outputs, and draining notices
# or ended trials, or forgetting a trial never seen, must change nothing at all.

def _with_metrics(trial, worker):
    lines = [LogEvent(trial, 1_700_000_000.0 + i, "stdout", f"epoch {i} acc={0.5 + 0.01 * i};", i,
                      worker) for i in range(12)]
    merged, rest = [], list(STREAMS[(trial, worker)])
    for line in lines:  # a log line after every few tensors
        merged += rest[:3] + [line]
        rest = rest[3:]
    return merged + rest


TRIAL_AFTER_TRIAL = [e for key in sorted(STREAMS) for e in _with_metrics(*key)]
BETWEEN = ("drain_notices", "drain_ended", "forget_finished_trials", "forget_unknown_trial")


def metrics_engine() -> Engine:
    default = Config.default()
    return Engine(Config(rules=default.rules, metrics=(MetricDefinition("acc", r"acc=(\S+?);"),),
                         objective=Objective("acc", "Maximize")))


def _between(e: Engine, call: str, position: int) -> None:
    if call == "drain_notices":
        e.drain_notices()
    elif call == "drain_ended":
        e.drain_ended()
    elif call == "forget_unknown_trial":
        e.forget_trial("never-seen")
    else:
        for trial in {event.trial for event in TRIAL_AFTER_TRIAL}:
            if all(event.trial != trial for event in TRIAL_AFTER_TRIAL[position:]):
                e.forget_trial(trial)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(min_value=1, max_value=40),
                          st.lists(st.sampled_from(BETWEEN), max_size=4)), min_size=1, max_size=12))
def test_calls_between_chunks_do_not_change_the_outputs_of_one_by_one_processing(chunks):
    events = TRIAL_AFTER_TRIAL
    reference = metrics_engine()
    one_by_one = [out for event in events for out in reference.process(event)]
    assert {a.trial for a in one_by_one if isinstance(a, AlertEvent)} == {"a", "b"}
    assert {m.trial for m in one_by_one if isinstance(m, MetricEvent)} == {"a", "b"}
    e, chunked, position = metrics_engine(), [], 0
    for size, calls in chunks:
        chunked += e.process_many(events[position:position + size])
        position += size
        for call in calls:
            _between(e, call, position)
    chunked += e.process_many(events[position:])
    assert chunked == one_by_one
