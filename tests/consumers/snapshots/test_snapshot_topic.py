"""The snapshots topic on a real broker: the newest record of a key is found by a bounded read from
the end of one partition, also behind other keys' records and after a batch of several records
(whose end offset Tansu answers wrongly)."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.snapshots import SnapshotTopic
from trainsentry.consumers.snapshots.topic import MAX_SCANNED_RECORDS


async def _with_topic(bootstrap_servers, topics, use):
    topic = SnapshotTopic(KafkaSettings(bootstrap_servers, topics=topics))
    await topic.start()
    try:
        return await use(topic)
    finally:
        await topic.stop()


def test_the_newest_record_of_a_key_is_found_behind_other_keys(bootstrap_servers, topics) -> None:
    async def use(topic: SnapshotTopic):
        assert await topic.newest(b"g/1", 1) is None  # nothing written yet
        assert [await topic.partition_of(k) for k in (0, 1, 4, 7)] == [0, 1, 0, 3]
        for n in range(3):
            await topic.write(b"g/1", b"first-%d" % n, 1)
        await topic.write(b"g/5", b"same partition, other key", 5)
        await topic.write(b"other/1", b"other group", 1)
        newest_first = await topic.newest(b"g/1", 1)
        for n in range(40):  # beyond the first window of 8 records
            await topic.write(b"g/9", b"other-%d" % n, 9)
        behind = await topic.newest(b"g/1", 1)
        missing = await topic.newest(b"g/13", 13)
        return newest_first, behind, missing

    newest_first, behind, missing = asyncio.run(_with_topic(bootstrap_servers, topics, use))
    assert (newest_first, behind, missing) == (b"first-2", b"first-2", None)


def test_the_newest_record_is_found_after_a_batch_of_several(bootstrap_servers, topics) -> None:
    async def use(topic: SnapshotTopic):
        await topic.write(b"g/2", b"alone", 2)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=100)
        await producer.start()
        try:
            sent = [await producer.send(topics.snapshots, b"batched-%d" % n, key=b"g/2", partition=2)
                    for n in range(5)]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()
        return await topic.newest(b"g/2", 2)

    assert asyncio.run(_with_topic(bootstrap_servers, topics, use)) == b"batched-4"


def test_a_key_further_back_than_the_bound_is_not_looked_for(bootstrap_servers, topics) -> None:
    async def use(topic: SnapshotTopic):
        await topic.write(b"g/3", b"old", 3)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=20)
        await producer.start()
        try:
            sent = [await producer.send(topics.snapshots, b"x", key=b"other/3", partition=3)
                    for _ in range(MAX_SCANNED_RECORDS + 10)]
            await asyncio.gather(*sent)
        finally:
            await producer.stop()
        return await topic.newest(b"g/3", 3)

    assert asyncio.run(_with_topic(bootstrap_servers, topics, use)) is None
