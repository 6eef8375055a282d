"""The snapshots topic's record format, where a gained partition resumes, and when a snapshot is due."""

from __future__ import annotations

import msgpack
import pytest

from trainsentry.consumers.snapshots import (
    SNAPSHOT_FORMAT,
    PartitionSnapshot,
    ResumePoint,
    SnapshotInterval,
    SnapshotRecordError,
    SnapshotSchedule,
    from_snapshot,
    from_the_beginning,
    snapshot_key,
)
from trainsentry.consumers.snapshots.record import decode_partition_snapshot
from trainsentry.consumers.snapshots.resume import unusable

TOPICS = ("p.tensors", "p.logs")
SNAP = PartitionSnapshot("group-a", 2, {"p.tensors": 900, "p.logs": 40}, {"p.tensors": 850, "p.logs": None},
                         b"engine state", trials=3, ts=1_700_000_000.5)


def fields(**changes: object) -> bytes:
    value = msgpack.unpackb(SNAP.encode())
    value.update(changes)
    return msgpack.packb({k: v for k, v in value.items() if v is not ...}, use_bin_type=True)


def refused(value: bytes | None, group: str = "group-a", partition: int = 2) -> str:
    with pytest.raises(SnapshotRecordError) as raised:
        decode_partition_snapshot(value, group, partition, TOPICS)
    return str(raised.value)


def test_a_snapshot_record_comes_back_as_written_and_is_keyed_by_group_and_partition():
    assert decode_partition_snapshot(SNAP.encode(), "group-a", 2, TOPICS) == SNAP
    assert decode_partition_snapshot(SNAP.encode(), "group-a", 2, TOPICS[::-1]) == SNAP
    assert snapshot_key("group-a", 2) == b"group-a/2"
    assert msgpack.unpackb(SNAP.encode())["v"] == SNAPSHOT_FORMAT == 1


def test_records_that_are_not_a_usable_snapshot_say_why_in_a_few_words():
    assert refused(None) == "is empty"
    assert refused(b"") == "is empty"
    assert refused(b"\xc1garbage").startswith("is not msgpack")
    assert refused(SNAP.encode()[:-3]).startswith("is not msgpack")
    assert refused(msgpack.packb([1, 2])) == "is not a map"
    assert refused(fields(v=0)) == "has format 0; this version of trainsentry reads format 1"
    assert refused(fields(v=...)) == "has format None; this version of trainsentry reads format 1"
    assert refused(fields(type="alert")).startswith("has format 1")
    assert refused(SNAP.encode(), group="group-b") == "belongs to another group or partition"
    assert refused(SNAP.encode(), partition=3) == "belongs to another group or partition"
    assert refused(fields(offsets={"p.tensors": 900})).startswith("does not hold one offset >= 0")
    assert refused(fields(offsets={"p.tensors": 900, "p.logs": -1})).startswith("does not hold one")
    assert refused(fields(offsets={"p.tensors": 900, "p.logs": "40"})).startswith("does not hold one")
    assert refused(fields(offsets={"p.tensors": 900, "p.logs": True})).startswith("does not hold one")
    assert refused(fields(committed={"p.tensors": 1})).startswith("does not hold the committed offset")
    assert refused(fields(committed=None)).startswith("does not hold the committed offset")
    assert refused(fields(state="text")).startswith("has no state")
    assert refused(fields(state=...)).startswith("has no state")
    assert refused(fields(trials=1.5)).startswith("has no state")


def test_a_partition_resumes_from_its_snapshot_or_its_beginning_with_outputs_dropped_below_the_commit():
    assert from_the_beginning(committed=700, beginning=100) == ResumePoint(100, 700)
    assert from_the_beginning(committed=None, beginning=100) == ResumePoint(100, None)
    assert from_the_beginning(committed=50, beginning=100) == ResumePoint(100, None)
    assert from_snapshot(committed=700, beginning=100, covered=650) == ResumePoint(650, 700)
    assert from_snapshot(committed=700, beginning=100, covered=700) == ResumePoint(700, None)
    # written before a commit its writer did not live to send: the outputs were acknowledged
    assert from_snapshot(committed=700, beginning=100, covered=720) == ResumePoint(720, None)
    # retention removed records the snapshot had not seen
    assert from_snapshot(committed=700, beginning=680, covered=650) == ResumePoint(680, 700)
    assert from_snapshot(committed=None, beginning=0, covered=30) == ResumePoint(30, None)


def test_a_snapshot_of_a_history_the_group_left_is_not_used():
    then = {"p.tensors": 850, "p.logs": None}
    assert unusable({"p.tensors": 850, "p.logs": None}, then) is None
    assert unusable({"p.tensors": 900, "p.logs": 12}, then) is None
    assert "up to offset 0, before the offset 850" in unusable({"p.tensors": 0, "p.logs": None}, then)
    assert "up to offset None" in unusable({"p.tensors": None, "p.logs": None}, then)


def test_a_partition_is_due_a_snapshot_every_so_many_records_or_seconds_once_it_changed():
    now = [0.0]
    schedule = SnapshotSchedule(SnapshotInterval(every_records=1_000, every_seconds=30.0), lambda: now[0])
    schedule.started(0)
    schedule.started(1)
    assert not schedule.due(0) and not schedule.changed(0)
    schedule.evaluated(0, 999)
    assert schedule.changed(0) and not schedule.due(0)
    schedule.evaluated(0, 1)
    assert schedule.due(0)
    schedule.taken(0)
    assert not schedule.due(0) and not schedule.changed(0)
    now[0] = 100.0
    assert not schedule.due(1)  # nothing evaluated: nothing to write however long it has been
    schedule.evaluated(1, 1)
    assert schedule.due(1)
    schedule.evaluated(7, 5_000)  # not owned: not counted
    assert not schedule.due(7) and schedule.partitions() == [0, 1]
    schedule.forget(1)
    assert schedule.partitions() == [0] and not schedule.due(1)


@pytest.mark.parametrize("records, seconds", [(0, 1.0), (10, 0.0), (10, -1.0)])
def test_an_interval_that_is_not_positive_is_refused(records, seconds):
    with pytest.raises(ValueError, match="snapshot interval: expected"):
        SnapshotInterval(records, seconds)
