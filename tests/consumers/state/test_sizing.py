"""deep_size: what the walk reaches and what each object counts."""

from __future__ import annotations

import sys
from collections import deque

import numpy as np

from trainsentry.consumers.state.sizing import allocated, deep_size


class _Slotted:
    __slots__ = ("values", "__hidden", "unset")

    def __init__(self, values):
        self.values = values
        self.__hidden = [0.5] * 100


class _Plain:
    def __init__(self, values):
        self.values = values


def test_containers_and_objects_are_walked():
    values = [float(i) for i in range(100)]  # floats above the cached range
    items = allocated(sys.getsizeof(values)) + 100 * 32
    assert deep_size(values) == items
    assert deep_size(_Slotted(values)) > items + 100 * 8  # slots, a mangled private one included
    assert deep_size(_Plain(values)) > items
    assert deep_size({"k": values}) > items and deep_size(deque(values)) > 100 * 32
    assert deep_size(frozenset(values)) > 100 * 32


def test_what_the_interpreter_shares_counts_nothing():
    assert deep_size(None) == deep_size(True) == deep_size(7) == deep_size("0") == 0
    assert deep_size(_Slotted) == deep_size(len) == deep_size(np) == 0
    assert deep_size(1000) == 32 and deep_size("loss") == 64


def test_an_object_reached_twice_counts_once_and_cycles_end():
    inner = [1.5] * 10
    assert deep_size([inner, inner]) == allocated(sys.getsizeof([inner, inner])) + deep_size(inner)
    cycle: list = []
    cycle.append(cycle)
    assert deep_size(cycle) == allocated(sys.getsizeof(cycle))


def test_an_array_view_counts_the_bytes_it_keeps_alive():
    record = bytes(40_000)
    view = np.frombuffer(record, dtype=np.float32).reshape(100, 100)[:1]  # one row of a record
    assert deep_size(view) > 40_000
    assert 80_000 <= deep_size(np.zeros(10_000)) < 80_300
    assert deep_size(np.float64(1.0)) == 32


def test_shared_ids_count_nothing():
    constant = ("shared", [1.5] * 100)
    assert deep_size([constant, 2.5], shared=frozenset({id(constant)})) == deep_size([None, 2.5])
