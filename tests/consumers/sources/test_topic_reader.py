"""Topics read from their beginning to their current end, outside any group."""

from __future__ import annotations

import asyncio

from tests.sidecar_harness import publish
from tests.streams import interleave, log_lines, losses
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sources.topic_reader import TopicSource


def test_every_record_of_the_chosen_trials_then_the_end(bootstrap_servers, topics) -> None:
    events = interleave(losses("keep", [1.0] * 30), losses("skip", [1.0] * 30), log_lines("keep", ["x"] * 5))
    publish(bootstrap_servers, topics, events)
    settings = KafkaSettings(bootstrap_servers, topics=topics, max_batch_records=7)

    async def read() -> list:
        source = TopicSource(settings, [topics.tensors, topics.logs], keys={b"keep"})
        await source.start()
        records = []
        try:
            while (batch := await source.fetch()) is not None:
                records.extend(r for part in batch.parts for r in part.records)
        finally:
            await source.stop()
        return records

    records = asyncio.run(asyncio.wait_for(read(), 60))
    assert {r.key for r in records} == {b"keep"}
    assert len(records) == 35
