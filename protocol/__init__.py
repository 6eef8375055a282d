"""The trainsentry wire protocol, version 1: what travels between training and the sidecar.

Both sides import it; it imports nothing of Kafka and nothing of either side (docs/protocol.md).

- :mod:`.events`: the five event types and the protocol's bounds;
- :mod:`.validation`: a decoded map checked field by field into its event;
- :mod:`.codec`: one record to bytes and back;
- :mod:`.replay_file`: reading a replay file;
- :mod:`.topics`, :mod:`.settings`: topic names, environment variables and defaults.

>>> ev = ScalarEvent(trial="run-1", ts=1.5, mode="TRAIN", step=3, name="loss", value=0.25)
>>> decode(encode(ev)) == ev
True
>>> try:
...     decode(encode({"v": 2, "type": "scalar"}))
... except ProtocolError as exc:
...     print(exc)
field 'v': unsupported protocol version: 2
"""

from .codec import decode, encode, to_wire
from .events import (
    DTYPES,
    MAX_COLLECTIONS,
    MAX_DIM_SIZE,
    MAX_DIMS,
    MAX_INT,
    MAX_LINE_CHARS,
    MAX_NAME_CHARS,
    MAX_RECORD_BYTES,
    MAX_TRIAL_CHARS,
    MAX_WORKER_CHARS,
    MODES,
    REDUCTIONS,
    STREAMS,
    VERSION,
    AlertEvent,
    Event,
    LogEvent,
    MetricEvent,
    ProtocolError,
    ScalarEvent,
    TensorEvent,
)
from .replay_file import FileReadResult, iter_file
from .topics import Topics
from .validation import validate

__all__ = [
    "DTYPES", "MAX_COLLECTIONS", "MAX_DIM_SIZE", "MAX_DIMS", "MAX_INT", "MAX_LINE_CHARS",
    "MAX_NAME_CHARS", "MAX_RECORD_BYTES", "MAX_TRIAL_CHARS", "MAX_WORKER_CHARS", "MODES",
    "REDUCTIONS", "STREAMS", "VERSION", "AlertEvent", "Event", "FileReadResult", "LogEvent",
    "MetricEvent", "ProtocolError", "ScalarEvent", "TensorEvent", "Topics", "decode", "encode",
    "iter_file", "to_wire", "validate",
]
