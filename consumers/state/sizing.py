"""How many bytes of memory a value holds: a deep ``sys.getsizeof`` walk, rounded as allocated.

:func:`deep_size` adds up every object reachable from a value through containers (tuple, list,
dict, set, frozenset, deque), the ``__slots__`` and ``__dict__`` of objects, and numpy arrays (the
array, and what holds its data: a view counts its base, so an array over a received record counts
that record's bytes). Each object counts what the allocator hands out for it: small objects come in
16-byte size classes, larger ones carry an 8-byte malloc header (:func:`allocated`). What the
interpreter shares count nothing: ``None``, booleans, ints from -5 to 256, one-character strings,
classes, functions and modules. An object reached twice from one value counts once, but an object
shared by two values counts in each (unless it is named ``shared``).

>>> deep_size(1.5), deep_size((1.5, 2.5)) == allocated(sys.getsizeof((1.5, 2.5))) + 2 * 32
(32, True)
>>> deep_size(("0", 7)) == deep_size(()) + 16, deep_size(1000)
(True, 32)
>>> import numpy as np
>>> deep_size(np.zeros(1000)) > 8000
True
"""

from __future__ import annotations

import sys
import types
from collections import deque
from typing import Any

import numpy as np

_getsizeof = sys.getsizeof
_SMALL_OBJECT = 512   # CPython's small-object allocator serves requests up to this size
_MALLOC_HEADER = 8

# How each type is walked, decided once per type (see _plan).
_LEAF, _SKIP, _ITEMS, _MAP, _ARRAY, _BUFFER, _OBJECT = range(7)
_SHARED = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)
_plans: dict[type, tuple[int, tuple[str, ...], bool, int]] = {}
_INT_SMALL = 1 << 30  # ints below this in magnitude take 28 bytes
_SMALL_INT_LOW, _SMALL_INT_HIGH = -5, 256  # the interpreter's cached ints


def allocated(size: int) -> int:
    """Bytes the allocator hands out for a request of ``size`` bytes (16-byte granularity).

    >>> allocated(28), allocated(64), allocated(4033)
    (32, 64, 4048)
    """
    if size > _SMALL_OBJECT:
        size += _MALLOC_HEADER
    return (size + 15) & ~15


def deep_size(value: Any, shared: frozenset[int] = frozenset()) -> int:
    """Bytes held by ``value`` and everything it references (see the module's docstring).

    Objects whose ``id`` is in ``shared`` are held elsewhere (configuration, constants): they and
    what they reference count nothing.
    """
    return walk_size([value], shared)


def walk_size(stack: list[Any], shared: frozenset[int] = frozenset()) -> int:
    """The :func:`deep_size` of every value in ``stack`` (consumed), an object shared counted once."""
    total = 0
    seen: set[int] = set()
    pop, push, extend = stack.pop, stack.append, stack.extend
    plans, getsizeof = _plans, _getsizeof
    while stack:
        obj = pop()
        kind = type(obj)
        # sys.getsizeof costs a method lookup: the commonest sizes are computed instead
        if kind is float:
            total += 32
            continue
        if kind is str:
            # one-character latin-1 strings are cached by the interpreter, like shared constants
            if len(obj) > 1 and id(obj) not in shared:
                total += allocated(49 + len(obj) if obj.isascii() else getsizeof(obj))
            elif len(obj) == 1 and ord(obj) > 255:
                total += allocated(getsizeof(obj))
            continue
        if kind is int:
            if not _SMALL_INT_LOW <= obj <= _SMALL_INT_HIGH:  # those are cached too
                total += 32 if -_INT_SMALL < obj < _INT_SMALL else allocated(getsizeof(obj))
            continue
        plan = plans.get(kind)
        if plan is None:
            plan = _plan(obj)
        how = plan[0]
        if how == _SKIP:
            continue
        if how == _LEAF:
            total += plan[3] or allocated(getsizeof(obj))
            continue
        ident = id(obj)
        if ident in seen or ident in shared:
            continue
        seen.add(ident)
        if how == _ITEMS:
            total += allocated(40 + 8 * len(obj)) if kind is tuple else allocated(getsizeof(obj))
            extend(obj)
        elif how == _OBJECT:
            total += plan[3] or allocated(getsizeof(obj))
            for name in plan[1]:
                push(getattr(obj, name, None))
            if plan[2]:
                push(obj.__dict__)
        else:
            total += allocated(getsizeof(obj))
            if how == _MAP:
                extend(obj.keys())
                extend(obj.values())
            elif how == _ARRAY:
                if obj.base is not None:  # a view: its data is held by the base
                    push(obj.base)
            elif how == _BUFFER:
                push(obj.obj)
    return total


def _plan(obj: Any) -> tuple[int, tuple[str, ...], bool, int]:
    """How objects of ``obj``'s type are walked, and their size when every instance has the same.

    Walks: skipped, leaf, items, mapping, array, buffer or object (its slots, and its ``__dict__``
    when it has one).
    """
    kind = type(obj)
    if obj is None or kind is bool or issubclass(kind, _SHARED):
        how = _SKIP
    elif issubclass(kind, (str, int, float, bytes, complex, bytearray, np.generic)):
        how = _LEAF
    elif issubclass(kind, np.ndarray):
        how = _ARRAY
    elif issubclass(kind, memoryview):
        how = _BUFFER
    elif issubclass(kind, dict):
        how = _MAP
    elif issubclass(kind, (tuple, list, set, frozenset, deque)):
        how = _ITEMS
    else:
        how = _OBJECT
    names = _slots_of(kind) if how == _OBJECT else ()
    has_dict = how == _OBJECT and kind.__dictoffset__ != 0
    # Same size for every instance: no items and no dict of its own (numpy scalars, slotted objects).
    fixed = (kind.__itemsize__ == 0 and not has_dict and how in (_LEAF, _OBJECT)
             and not issubclass(kind, (str, int, bytes, bytearray)))
    plan = _plans[kind] = (how, names, has_dict, allocated(_getsizeof(obj)) if fixed else 0)
    return plan

def _slots_of(kind: type) -> tuple[str, ...]:
    """Every ``__slots__`` name declared along the class's MRO (``__dict__``/``__weakref__`` aside)."""
    names: list[str] = []
    for cls in kind.__mro__:
        declared = cls.__dict__.get("__slots__", ())
        if isinstance(declared, str):
            declared = (declared,)
        for name in declared:
            if name in ("__dict__", "__weakref__"):
                continue
            if name.startswith("__") and not name.endswith("__"):  # a private name is mangled
                name = f"_{cls.__name__.lstrip('_')}{name}"
            names.append(name)
    return tuple(names)
