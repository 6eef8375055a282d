"""Replay files as a source: every valid event in order, in bounded batches, across files."""

from __future__ import annotations

import asyncio

from tests.streams import T0, losses
from trainsentry.consumers.sources.replay_file import ReplayFileSource
from trainsentry.protocol import encode


def drain(source: ReplayFileSource) -> list:
    async def run() -> list:
        batches = []
        while (batch := await source.fetch()) is not None:
            batches.append(batch)
        await source.stop()
        return batches
    return asyncio.run(run())


def test_events_in_file_order_in_batches_of_at_most_the_asked_size(tmp_path) -> None:
    first, second = losses("a", [1.0] * 7), losses("b", [2.0] * 4)
    (tmp_path / "1.msgpack").write_bytes(b"".join(encode(e) for e in first))
    (tmp_path / "2.msgpack").write_bytes(b"".join(encode(e) for e in second))
    source = ReplayFileSource([tmp_path / "1.msgpack", tmp_path / "2.msgpack"], batch_events=5)
    batches = drain(source)
    assert [batch.size for batch in batches] == [5, 5, 1]
    assert [[(p.lane[-9:], p.size) for p in b.parts] for b in batches] == [
        [("1.msgpack", 5)], [("1.msgpack", 2), ("2.msgpack", 3)], [("2.msgpack", 1)]]
    assert [e for b in batches for p in b.parts for e in p.events] == first + second


def test_what_a_file_held_besides_events_is_reported_per_file(tmp_path) -> None:
    events = losses("c", [1.0] * 3)
    bad = encode({"v": 1, "type": "scalar", "trial": "c", "ts": T0, "mode": "TRAIN", "step": -1,
                  "name": "loss", "value": 1.0})
    path = tmp_path / "c.msgpack"
    path.write_bytes(encode(events[0]) + bad + encode(events[1]) + encode(events[2]) + b"\xc1")
    source = ReplayFileSource([path])
    assert [e for b in drain(source) for p in b.parts for e in p.events] == events
    [(read, result)] = source.results
    assert read == path and result.invalid == 1 and "field 'step'" in result.reasons[0]
    assert result.undecodable_at == path.stat().st_size - 1
