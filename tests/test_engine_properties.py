"""Engine properties: outputs depend only on each series' own order, never on interleaving."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.rules.events import alerts, losses, tensor
from trainsentry.consumers.engine import Engine
from trainsentry.rules.config import Config

import numpy as np

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


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=10))
def test_batching_does_not_change_outputs(cuts):
    events = [e for key in sorted(STREAMS) for e in STREAMS[key]]
    whole = engine().process_many(events)
    batched, position, e = [], 0, engine()
    for cut in cuts + [len(events)]:
        batched += e.process_many(events[position:position + cut])
        position += cut
    assert batched == whole
