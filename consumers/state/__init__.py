"""The engine's keyed state, layered one role per module (as quixstreams' state is).

- :mod:`.store`: the interface, :class:`StateStore` (trials), :class:`TrialState` (slots of a
  trial) and :class:`Table` (keys of a slot): every value is addressed by (trial, slot, key);
- :mod:`.memory`: the in-memory backend, :class:`MemoryStore`, sized incrementally;
- :mod:`.sizing`: how many bytes a value holds (:func:`deep_size`);
- :mod:`.view`: one value per trial seen as a mapping (:class:`TrialSlotView`);
- :mod:`.snapshot`: state as versioned bytes and back, safe against untrusted input.

Nothing here knows of rules, events or Kafka.
"""

from .memory import MemoryStore
from .sizing import deep_size
from .snapshot import SnapshotError, decode_snapshot, encode_snapshot
from .store import StateStore, Table, TrialState
from .view import TrialSlotView

__all__ = ["MemoryStore", "SnapshotError", "StateStore", "Table", "TrialSlotView", "TrialState",
           "decode_snapshot", "deep_size", "encode_snapshot"]
