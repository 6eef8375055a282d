"""State as bytes and back: versioned, checksummed, and decoded without running foreign code.

Layout of a snapshot::

    magic      8 bytes  b"TSSTATE\\0"
    format     2 bytes  big-endian FORMAT_VERSION (this layout)
    schema    32 bytes  sha256 of what the payload means (for the engine: its version and configuration)
    checksum  16 bytes  blake2b of the payload
    payload             a pickle (protocol 5) of builtin containers, numbers, strings, bytes,
                        collections.deque, numeric numpy arrays and scalars, and the given classes

Decoding trusts nothing: the unpickler rebuilds only the types listed above (an array comes back
through :func:`_array`, which accepts numeric dtypes whose shape matches the bytes), so a forged
snapshot cannot name a function to call. Whatever is wrong (another layout, another schema,
a flipped bit, a forged payload) raises one :class:`SnapshotError` saying what.

>>> data = encode_snapshot({"a": (1, 2.5)}, schema="demo")
>>> decode_snapshot(data, schema="demo", classes=())
{'a': (1, 2.5)}
>>> decode_snapshot(data[:-1] + b"?", schema="demo", classes=())
Traceback (most recent call last):
...
trainsentry.consumers.state.snapshot.SnapshotError: state snapshot is corrupt: its checksum does not match
"""

from __future__ import annotations

import copyreg
import hashlib
import io
import math
import pickle
from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np

MAGIC = b"TSSTATE\0"
FORMAT_VERSION = 1
_HEADER = len(MAGIC) + 2 + 32 + 16
_NUMERIC_KINDS = "biufc"
_MAX_DIMS = 64


class SnapshotError(ValueError):
    """A snapshot that cannot be restored: not one, another format or schema, corrupt or forged."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"state snapshot {problem}")


def encode_snapshot(payload: Any, *, schema: str) -> bytes:
    """``payload`` as a snapshot; :class:`SnapshotError` if it holds what cannot be restored."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=5)
    pickler.dispatch_table = _DISPATCH
    try:
        pickler.dump(payload)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise SnapshotError(f"cannot be taken: {exc}") from None
    body = buffer.getvalue()
    return b"".join((MAGIC, FORMAT_VERSION.to_bytes(2, "big"), _schema_digest(schema),
                     _checksum(body), body))


def decode_snapshot(data: bytes, *, schema: str, classes: Iterable[type]) -> Any:
    """The payload of ``data``, rebuilt from allowed types only (see the module's docstring).

    ``classes`` are the only classes besides the builtin ones that the payload may hold.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SnapshotError(f"must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) < _HEADER or not data.startswith(MAGIC):
        raise SnapshotError("is not one: it does not start with a trainsentry state header")
    at = len(MAGIC)
    version = int.from_bytes(data[at:at + 2], "big")
    if version != FORMAT_VERSION:
        raise SnapshotError(f"has format {version}; this version of trainsentry reads format "
                            f"{FORMAT_VERSION}")
    at += 2
    if data[at:at + 32] != _schema_digest(schema):
        raise SnapshotError("was taken by another version of trainsentry or with another "
                            "configuration (rules, metric definitions, objective)")
    at += 32
    checksum, body = data[at:at + 16], data[_HEADER:]
    if checksum != _checksum(body):
        raise SnapshotError("is corrupt: its checksum does not match")
    stream = io.BytesIO(body)
    try:
        payload = _RestrictedUnpickler(stream, classes).load()
    except SnapshotError:
        raise
    except Exception as exc:  # whatever forged bytes make fail is the one error
        raise SnapshotError(f"is corrupt: {type(exc).__name__}: {str(exc)[:200]}") from None
    if stream.tell() != len(body):
        raise SnapshotError("is corrupt: bytes follow its end")
    return payload


def _schema_digest(schema: str) -> bytes:
    return hashlib.sha256(schema.encode("utf-8", "surrogatepass")).digest()


def _checksum(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16).digest()


# --- numpy, in and out ----------------------------------------------------------------------------

def _array(dtype: str, shape: tuple[int, ...], data: bytes) -> np.ndarray:
    """A read-only numeric array of ``shape`` over ``data``; ``ValueError`` for anything else."""
    kind = _numeric_dtype(dtype)
    if (not isinstance(shape, tuple) or len(shape) > _MAX_DIMS
            or not all(type(n) is int and n >= 0 for n in shape)):
        raise ValueError(f"bad array shape {shape!r:.80}")
    if not isinstance(data, bytes) or math.prod(shape) * kind.itemsize != len(data):
        raise ValueError("array bytes do not match its shape")
    return np.frombuffer(data, dtype=kind).reshape(shape)


def _number(dtype: str, data: bytes) -> np.generic:
    """The numpy scalar of ``dtype`` held in ``data``."""
    kind = _numeric_dtype(dtype)
    if not isinstance(data, bytes) or len(data) != kind.itemsize:
        raise ValueError("number bytes do not match its dtype")
    return np.frombuffer(data, dtype=kind)[0]


def _numeric_dtype(dtype: str) -> np.dtype:
    if not isinstance(dtype, str) or len(dtype) > 8:
        raise ValueError(f"bad dtype {dtype!r:.40}")
    kind = np.dtype(dtype)
    if kind.kind not in _NUMERIC_KINDS or kind.fields is not None or kind.subdtype is not None:
        raise ValueError(f"not a numeric dtype: {dtype!r}")
    return kind


def _reduce_array(array: np.ndarray) -> tuple[Any, ...]:
    if array.dtype.kind not in _NUMERIC_KINDS or array.dtype.fields is not None:
        raise TypeError(f"an array of dtype {array.dtype} cannot be kept in a snapshot")
    return _array, (array.dtype.str, tuple(int(n) for n in array.shape), array.tobytes())


def _reduce_number(number: np.generic) -> tuple[Any, ...]:
    return _number, (number.dtype.str, number.tobytes())


_DISPATCH = dict(copyreg.dispatch_table)
_DISPATCH[np.ndarray] = _reduce_array
for _type in set(np.sctypeDict.values()):
    if issubclass(_type, np.generic) and np.dtype(_type).kind in _NUMERIC_KINDS:
        _DISPATCH[_type] = _reduce_number

_BUILTINS = {("builtins", "set"): set, ("builtins", "frozenset"): frozenset,
             ("builtins", "complex"): complex, ("builtins", "bytearray"): bytearray,
             ("collections", "deque"): deque,
             (__name__, "_array"): _array, (__name__, "_number"): _number}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that finds only the builtin allowances and the given classes."""

    def __init__(self, stream: io.BytesIO, classes: Iterable[type]) -> None:
        super().__init__(stream)
        self._allowed = dict(_BUILTINS)
        for cls in classes:
            self._allowed[(cls.__module__, cls.__qualname__)] = cls

    def find_class(self, module: str, name: str) -> Any:
        found = self._allowed.get((module, name))
        if found is None:
            raise SnapshotError(f"holds {module}.{name}, which is not a state type of this engine")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise SnapshotError("holds a persistent reference, which no state has")
