"""Recovery bounded by the snapshot interval, not by the history: snapshots of each input partition.

A member of the sidecar's group that gains input partition *k* needs the windows of the trials on
it. Instead of reading the partition from its beginning, it restores the newest snapshot of *k*
and reads only the records after it.

**Writing.** For each partition it owns, the sidecar takes a snapshot of the engine state of the
trials seen on *k* once *k* has evaluated ``every_records`` records since the last one, or
``every_seconds`` have passed and it evaluated any (:mod:`.schedule`); and, for partitions that
changed since, when the partitions are revoked and when the sidecar stops. A snapshot is taken
between batches, after the batch's outputs were acknowledged by the broker, and records the offset
of the next record of *k* not yet evaluated on each input topic (tensors and logs share partition
numbers). It is written to the snapshots topic (``<prefix>.snapshots``, compacted, keyed
``<group id>/<k>``, in partition ``k mod n``: :mod:`.record`, :mod:`.topic`) and acknowledged
*before* the batch's offsets are committed, so the newest snapshot never lags the committed offsets.

**Restoring.** On assignment, for each gained partition with a committed offset, the newest
snapshot of *k* is read (a bounded read from the end of one partition of the snapshots topic),
checked and restored; each input partition is then read from the snapshot's offset, its records
below the committed offset evaluated with their outputs dropped (they were published before), as
when reading from the beginning (:mod:`.resume`). A partition nothing was committed for is read
from its beginning with every output published, as before.

**Falling back.** A snapshot that is missing, unreadable, of another record format, corrupt, of
another trainsentry version or configuration (the engine's own check), or taken when the group
had committed more than it has now (its offsets were reset since) is not used: the partition is
read from its beginning, and the log says so once, with the reason. A snapshot may cover records
beyond the committed offset (its writer stopped between writing it and committing): their outputs
were acknowledged, and reading starts after them.

**Guarantee.** The same alerts, ids included, as a run that never stopped, delivered at least once:
a snapshot holds exactly the state the records before its offsets left, an engine restored from it
produces what the engine that took it would have (tests/consumers/engine/test_snapshot.py), and
every output of a record before its offsets was acknowledged before it was written.
"""

from .partition_snapshots import PartitionSnapshots, PartitionState, Restored
from .record import SNAPSHOT_FORMAT, PartitionSnapshot, SnapshotRecordError, snapshot_key
from .resume import ResumePoint, from_snapshot, from_the_beginning
from .schedule import SnapshotInterval, SnapshotSchedule
from .topic import SnapshotTopic, snapshot_topic_config

__all__ = ["SNAPSHOT_FORMAT", "PartitionSnapshot", "PartitionSnapshots", "PartitionState", "Restored",
           "ResumePoint", "SnapshotInterval", "SnapshotRecordError", "SnapshotSchedule",
           "SnapshotTopic", "from_snapshot", "from_the_beginning", "snapshot_key",
           "snapshot_topic_config"]
