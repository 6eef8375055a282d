"""One record of the snapshots topic: an input partition's engine state and the offsets it covers.

The record's key is ``<group id>/<partition>`` in UTF-8; its value is one msgpack map
(docs/protocol.md, "Snapshots"):

=============  =========  ====================================================================
``v``          int        :data:`SNAPSHOT_FORMAT`, the layout of this map
``type``       str        ``"snapshot"``
``group``      str        the consumer group whose member wrote it
``partition``  int        the input partition *k* (of the tensors and of the logs topic)
``offsets``    map        input topic -> the first offset of its partition *k* the state has not seen
``committed``  map        input topic -> the offset the group had committed for it when the snapshot
                          was taken (nil: none): what a reader checks its committed offset against
``trials``     int        how many trials the state holds
``ts``         float      when it was written, seconds since the epoch
``state``      bin        the engine's snapshot of those trials (its own header: format, the
                          trainsentry version and configuration it is valid for, and a checksum)
=============  =========  ====================================================================

>>> snap = PartitionSnapshot("g", 3, {"t.tensors": 120, "t.logs": 7}, {"t.tensors": 100, "t.logs": None},
...                          b"...", trials=2, ts=1.5)
>>> snapshot_key("g", 3)
b'g/3'
>>> decode_partition_snapshot(snap.encode(), "g", 3, ("t.tensors", "t.logs")) == snap
True
>>> decode_partition_snapshot(b"\\x93\\x01\\x02\\x03", "g", 3, ("t.tensors", "t.logs"))
Traceback (most recent call last):
...
trainsentry.consumers.snapshots.record.SnapshotRecordError: is not a map
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack

SNAPSHOT_FORMAT = 1
RECORD_TYPE = "snapshot"


class SnapshotRecordError(ValueError):
    """A snapshots-topic record that cannot be used; the message says why, in a few words."""


@dataclass(frozen=True)
class PartitionSnapshot:
    """The state of the trials of input partition ``partition`` after every record before
    ``offsets`` (per input topic) was evaluated, with the outputs of those records acknowledged;
    ``committed`` is what the group had committed then."""

    group: str
    partition: int
    offsets: Mapping[str, int]
    committed: Mapping[str, int | None]
    state: bytes = field(repr=False)
    trials: int = 0
    ts: float = 0.0

    def encode(self) -> bytes:
        return msgpack.packb({
            "v": SNAPSHOT_FORMAT, "type": RECORD_TYPE, "group": self.group,
            "partition": self.partition, "offsets": dict(self.offsets),
            "committed": dict(self.committed), "trials": self.trials,
            "ts": self.ts, "state": self.state}, use_bin_type=True)


def snapshot_key(group: str, partition: int) -> bytes:
    """The key of the snapshots of ``group``'s input partition ``partition``."""
    return f"{group}/{partition}".encode()


def decode_partition_snapshot(value: bytes | None, group: str, partition: int,
                              topics: Sequence[str]) -> PartitionSnapshot:
    """The snapshot in ``value``, checked to be ``group``'s of ``partition`` over exactly
    ``topics``; :class:`SnapshotRecordError` otherwise (the engine state itself is checked when
    it is restored)."""
    if not value:
        raise SnapshotRecordError("is empty")
    try:
        fields: Any = msgpack.unpackb(value, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several kinds for bytes that are not msgpack
        raise SnapshotRecordError(f"is not msgpack ({type(exc).__name__})") from None
    if not isinstance(fields, dict):
        raise SnapshotRecordError("is not a map")
    version = fields.get("v")
    if version != SNAPSHOT_FORMAT or fields.get("type") != RECORD_TYPE:
        raise SnapshotRecordError(f"has format {str(version)[:20]}; this version of trainsentry "
                                  f"reads format {SNAPSHOT_FORMAT}")
    if fields.get("group") != group or fields.get("partition") != partition:
        raise SnapshotRecordError("belongs to another group or partition")
    offsets = fields.get("offsets")
    if (not isinstance(offsets, dict) or set(offsets) != set(topics)
            or not all(type(o) is int and o >= 0 for o in offsets.values())):
        raise SnapshotRecordError(f"does not hold one offset >= 0 for each of {', '.join(topics)}")
    committed = fields.get("committed")
    if (not isinstance(committed, dict) or set(committed) != set(topics)
            or not all(o is None or (type(o) is int and o >= 0) for o in committed.values())):
        raise SnapshotRecordError(f"does not hold the committed offset (or nil) of each of "
                                  f"{', '.join(topics)}")
    state, trials, ts = fields.get("state"), fields.get("trials"), fields.get("ts")
    if not isinstance(state, bytes) or type(trials) is not int or not isinstance(ts, (int, float)):
        raise SnapshotRecordError("has no state, or a malformed trial count or time")
    return PartitionSnapshot(group, partition, offsets, committed, state, trials, float(ts))
