"""Where a gained input partition is read from, and up to where its records only rebuild state.

Records below the group's committed offset had their outputs published by an earlier owner: they
are evaluated again only to rebuild the windows, their outputs dropped. Without a snapshot that
means from the partition's beginning; from a snapshot, from the offset it covers.

>>> from_the_beginning(committed=500, beginning=0)
ResumePoint(seek=0, rebuild_until=500)
>>> from_the_beginning(committed=None, beginning=0)           # nothing committed: all of it is new
ResumePoint(seek=0, rebuild_until=None)
>>> from_the_beginning(committed=500, beginning=800)          # retention removed all before it
ResumePoint(seek=800, rebuild_until=None)
>>> from_snapshot(committed=500, beginning=0, covered=420)
ResumePoint(seek=420, rebuild_until=500)
>>> from_snapshot(committed=500, beginning=0, covered=500)    # nothing to rebuild
ResumePoint(seek=500, rebuild_until=None)
>>> unusable({"t.tensors": 500, "t.logs": None}, {"t.tensors": 480, "t.logs": None})
>>> unusable({"t.tensors": 0, "t.logs": None}, {"t.tensors": 480, "t.logs": None})
'the group committed t.tensors up to offset 0, before the offset 480 it had committed when the snapshot was taken (its offsets were reset?)'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ResumePoint:
    """Read from ``seek``; records below ``rebuild_until`` (if any) rebuild state only."""

    seek: int
    rebuild_until: int | None


def from_the_beginning(committed: int | None, beginning: int) -> ResumePoint:
    """Everything the partition still holds, with outputs dropped below ``committed``."""
    if committed is None:
        return ResumePoint(beginning, None)
    if beginning >= committed:
        return ResumePoint(beginning, None)
    return ResumePoint(beginning, committed)


def from_snapshot(committed: int | None, beginning: int, covered: int) -> ResumePoint:
    """The records after a snapshot that covers those below ``covered``."""
    seek = max(covered, beginning)  # retention may have removed records the snapshot had not seen
    return ResumePoint(seek, committed if committed is not None and committed > seek else None)


def unusable(committed: Mapping[str, int | None], then: Mapping[str, int | None]) -> str | None:
    """Why a snapshot taken when the group had committed ``then`` cannot start the history the
    group has ``committed`` now, or ``None``.

    Committed offsets only grow, except when an operator resets them: a group now behind what it
    had committed when the snapshot was taken has left that history (and wants the records in
    between evaluated again, their outputs published). A snapshot may cover records beyond the
    committed offset: it is written before the commit of its batch, which its writer may not have
    lived to send; the outputs of those records were acknowledged all the same.
    """
    for topic, before in then.items():
        now = committed.get(topic)
        if before is not None and (now is None or now < before):
            return (f"the group committed {topic} up to offset {now}, before the offset {before} "
                    f"it had committed when the snapshot was taken (its offsets were reset?)")
    return None
