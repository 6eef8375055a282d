"""The driver alone: in-memory sources and sinks around the real engine, no broker.

What it must guarantee whoever feeds it: every sink keeps a batch's outputs before the source
commits it, retriable failures are retried, others stop the run uncommitted, undecodable input
becomes dead letters, and records that only rebuild state produce nothing.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from tests.streams import T0, interleave, losses, replay_alerts, weights, write_config
from trainsentry.consumers.driver import Driver, DriverListener
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.sinks.base import Sink
from trainsentry.consumers.sources.base import Batch, Part, Source
from trainsentry.protocol import AlertEvent, encode
from trainsentry.rules.config import load_config


class Retriable(Exception):
    pass


class Refused(Exception):
    pass


class ListSource(Source):
    """Hands out the given batches, then ends; notes each commit in ``log``."""

    def __init__(self, batches: list[Batch], log: list) -> None:
        self.batches = list(batches)
        self.log = log
        self.fetched = 0

    async def fetch(self) -> Batch | None:
        if not self.batches:
            return None
        self.fetched += 1
        return self.batches.pop(0)

    async def commit(self, batch: Batch) -> None:
        self.log.append(("commit", self.fetched))


class KeptSink(Sink):
    """Keeps what it is given; refuses the first ``failures`` batches with ``error``."""

    def __init__(self, name: str, log: list, failures: int = 0, error: Exception | None = None) -> None:
        self.name, self.log, self.failures = name, log, failures
        self.error = error or Retriable("away")
        self.outputs: list = []
        self.dead: list = []
        self.stopped: bool | None = None

    async def write_batch(self, outputs, dead_letters) -> None:
        if self.failures:
            self.failures -= 1
            raise self.error
        self.outputs.extend(outputs)
        self.dead.extend(dead_letters)
        self.log.append(("write", self.name))

    async def stop(self, complete: bool) -> None:
        self.stopped = complete

    def retriable(self, error: BaseException) -> bool:
        return isinstance(error, Retriable)


class Failures(DriverListener):
    def __init__(self, stop: asyncio.Event | None = None) -> None:
        self.count, self.stop = 0, stop

    def delivery_failed(self, error: BaseException) -> None:
        self.count += 1
        if self.stop is not None:
            self.stop.set()


def records(events, topic: str = "t.tensors", start: int = 0) -> list[SimpleNamespace]:
    return [SimpleNamespace(topic=topic, partition=0, offset=start + i, key=e.trial.encode(),
                            value=encode(e), timestamp=int(e.ts * 1000)) for i, e in enumerate(events)]


def batches_of(items: list, size: int) -> list[Batch]:
    return [Batch([Part(("t", 0), records=items[i:i + size])]) for i in range(0, len(items), size)]


@pytest.fixture
def config(tmp_path):
    return write_config(tmp_path)


def alerts_of(outputs) -> dict[str, AlertEvent]:
    return {a.id: a for a in outputs if isinstance(a, AlertEvent)}


def test_every_sink_keeps_a_batch_before_the_source_commits_it(config) -> None:
    events = interleave(losses("d1", [1.0] * 12, every=1), weights("d1", steps=8, frozen_after=3))
    log: list = []
    first, second = KeptSink("first", log), KeptSink("second", log)
    source = ListSource(batches_of(records(events), 5), log)
    assert asyncio.run(Driver(Engine(load_config(config)), source, [first, second]).run())
    expected = replay_alerts(config, events)
    assert len(expected) >= 2
    assert alerts_of(first.outputs) == expected and alerts_of(second.outputs) == expected
    # Between two commits, both sinks have written: a commit never precedes a write of its batch.
    writes = 0
    for entry in log:
        if entry[0] == "write":
            writes += 1
        elif writes:  # a commit of a batch that had outputs
            assert writes == 2, log
            writes = 0
    assert first.stopped is True and second.stopped is True


def test_a_retriable_failure_is_retried_until_the_sink_takes_the_batch(config) -> None:
    events = losses("d2", [1.0] * 32, every=1)
    log: list = []
    flaky, steady = KeptSink("flaky", log, failures=3), KeptSink("steady", log)
    listener = Failures()
    driver = Driver(Engine(load_config(config)), ListSource(batches_of(records(events), 100), log),
                    [flaky, steady], listener=listener, retry_seconds=0)
    assert asyncio.run(driver.run())
    expected = replay_alerts(config, events)
    assert listener.count == 3
    # Each sink has each alert once: the steady one was not given the batch again.
    assert [a.id for a in flaky.outputs] == [a.id for a in steady.outputs] == list(expected)
    assert log.index(("write", "flaky")) < log.index(("commit", 1))


def test_a_refusal_that_cannot_be_retried_ends_the_run_uncommitted(config) -> None:
    log: list = []
    refusing = KeptSink("refusing", log, failures=1, error=Refused("not authorised"))
    source = ListSource(batches_of(records(losses("d3", [1.0] * 16, every=1)), 100), log)
    with pytest.raises(Refused):
        asyncio.run(Driver(Engine(load_config(config)), source, [refusing]).run())
    assert not any(entry[0] == "commit" for entry in log)
    assert refusing.stopped is False


def test_stopping_during_an_outage_commits_nothing(config) -> None:
    log: list = []
    away = KeptSink("away", log, failures=10**6)

    async def run() -> bool:
        stop = asyncio.Event()
        source = ListSource(batches_of(records(losses("d4", [1.0] * 16, every=1)), 100), log)
        return await Driver(Engine(load_config(config)), source, [away], listener=Failures(stop),
                            retry_seconds=0).run(stop)

    assert asyncio.run(run()) is False
    assert log == []


def test_undecodable_records_become_dead_letters_and_the_stream_goes_on(config) -> None:
    events = losses("d5", [1.0] * 16, every=1)
    good = records(events)
    bad = SimpleNamespace(topic="t.tensors", partition=0, offset=99, key=b"d5", value=b"\xc1",
                          timestamp=0)
    wrong_key = SimpleNamespace(**{**vars(good[0]), "offset": 100, "key": b"other"})
    log: list = []
    sink = KeptSink("sink", log)
    items = good[:3] + [bad, wrong_key] + good[3:]
    asyncio.run(Driver(Engine(load_config(config)), ListSource(batches_of(items, 4), log), [sink]).run())
    assert alerts_of(sink.outputs) == replay_alerts(config, events)
    assert [(d.offset, d.value) for d in sink.dead] == [(99, b"\xc1"), (100, good[0].value)]
    assert sink.dead[1].reason.startswith("field 'key'")


def test_records_below_the_rebuild_offset_rebuild_state_and_produce_nothing(config) -> None:
    events = losses("d6", [1.0] * 32, every=1)
    engine = Engine(load_config(config))
    produced = [engine.process(e) for e in events]
    rebuild_below = 15  # the alert of step 10 was delivered before the last commit
    expected = {a.id: a for outs in produced[rebuild_below:] for a in outs}
    assert [a.step for a in expected.values()] == [20, 30] and any(produced[:rebuild_below])
    log: list = []
    sink = KeptSink("sink", log)
    part = Part(("t", 0), records=records(events), rebuild_below=rebuild_below)
    asyncio.run(Driver(Engine(load_config(config)), ListSource([Batch([part])], log), [sink]).run())
    assert alerts_of(sink.outputs) == expected


class ExplodingEngine(Engine):
    """The real engine, except that a rule 'fails' on the events of trial ``boom``."""

    def process(self, event):
        if event.trial == "boom":
            raise ZeroDivisionError("a rule's bug")
        return super().process(event)


def test_an_event_the_engine_cannot_evaluate_is_dead_lettered(config) -> None:
    events = losses("d7", [1.0] * 16, every=1)
    log: list = []
    sink = KeptSink("sink", log)
    items = records(losses("boom", [1.0])) + records(events, start=1)
    part = Part(("t", 0), records=items)
    asyncio.run(Driver(ExplodingEngine(load_config(config)), ListSource([Batch([part])], log), [sink]).run())
    assert alerts_of(sink.outputs) == replay_alerts(config, events)
    assert [d.reason for d in sink.dead] == ["evaluation failed: ZeroDivisionError: a rule's bug"]
    # Decoded events (a replay file) are set aside the same way.
    sink = KeptSink("sink", log)
    part = Part("run.msgpack", events=losses("boom", [1.0]) + events)
    asyncio.run(Driver(ExplodingEngine(load_config(config)), ListSource([Batch([part])], log), [sink]).run())
    assert alerts_of(sink.outputs) == replay_alerts(config, events)
    assert [(d.topic, d.key) for d in sink.dead] == [("run.msgpack", b"boom")]


class EndingEngine(Engine):
    """The real engine, with one alert at the end of input."""

    LAST = AlertEvent(trial="e", ts=T0, id="last", rule="r", rule_type="r", mode="TRAIN", step=1,
                      tensors=("loss",), message="at the end", details={}, event_ts=T0)

    def end_of_input(self):
        return [*super().end_of_input(), self.LAST]


def test_the_end_of_a_bounded_source_is_delivered_and_admission_filters(config) -> None:
    events = losses("keep", [1.0] * 16, every=1) + losses("drop", [1.0] * 16, every=1)
    log: list = []
    sink = KeptSink("sink", log)
    part = Part("file", events=events)
    driver = Driver(EndingEngine(load_config(config)), ListSource([Batch([part])], log), [sink],
                    admit=lambda event: event.trial == "keep")
    assert asyncio.run(driver.run())
    assert alerts_of(sink.outputs) == {**replay_alerts(config, events[:16]), "last": EndingEngine.LAST}
