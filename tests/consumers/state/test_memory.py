"""The in-memory store: addressing by (trial, slot, key), dropping prefixes, incremental sizing."""

from __future__ import annotations

from collections import deque

import pytest

from trainsentry.consumers.state import MemoryStore, deep_size
from trainsentry.consumers.state import memory as memory_module
from trainsentry.consumers.state.memory import SMALL_TABLE


@pytest.fixture
def sized(monkeypatch):
    """Counts the entries the store sizes (each sizing walks one key and its value)."""
    calls = []
    real = memory_module.walk_size

    def counting(stack, shared=frozenset()):
        calls.append(stack[0])
        return real(stack, shared)

    monkeypatch.setattr(memory_module, "walk_size", counting)
    return calls


def test_values_are_addressed_by_trial_slot_and_key():
    store = MemoryStore()
    store.trial("a").table("windows").put(("0", "TRAIN", "loss"), [1.0])
    store.trial("a").table("steps", fixed=True).put(("0", "TRAIN", "loss"), 3)
    store.trial("b").table("windows").put(("0", "TRAIN", "loss"), [2.0])
    assert store.trials() == ["a", "b"] and "a" in store and len(store) == 2
    assert store.find("a").tables["windows"].entries == {("0", "TRAIN", "loss"): [1.0]}
    assert store.find("c") is None and "c" not in store


def test_dropping_a_slot_or_a_trial_releases_its_bytes():
    store = MemoryStore()
    empty = store.state_bytes()
    state = store.trial("a")
    state.table("kept").put("k", [0.0] * 10)
    one = store.state_bytes()
    state.table("dropped").put("k", [0.0] * 100)
    two = store.state_bytes()
    assert empty < one < two
    state.drop("dropped")
    assert store.state_bytes() == one and list(state.tables) == ["kept"]
    store.drop("a")
    assert store.state_bytes() == empty and store.trials() == []
    store.drop("a")  # nothing held: nothing happens
    assert store.state_bytes() == empty


def test_sizes_follow_values_changed_in_place_once_touched():
    store = MemoryStore()
    table = store.trial("a").table("windows")
    window = deque()
    table.put("loss", window)
    before = store.state_bytes()
    window.extend(float(i) for i in range(200))
    assert store.state_bytes() == before  # not told: not sized again
    table.touch("loss")
    assert store.state_bytes() >= before + 200 * 32
    window.clear()
    table.touch("loss")
    assert store.state_bytes() == before


def test_only_what_changed_is_sized_again(sized):
    store = MemoryStore()
    big = store.trial("a").table("series")
    for i in range(1000):
        big.put(("0", "TRAIN", f"layer{i}"), [float(i)])
    small = store.trial("b").table("series")
    small.put("loss", [1.0])
    store.state_bytes()
    assert len(sized) == 1001  # every entry once
    sized.clear()
    assert store.state_bytes() == store.state_bytes() and sized == []  # nothing changed
    big.entries[("0", "TRAIN", "layer7")].append(2.0)
    big.touch(("0", "TRAIN", "layer7"))
    grown = store.state_bytes()
    assert sized == [("0", "TRAIN", "layer7")]  # the one entry of the large table
    sized.clear()
    small.touch("loss")
    assert store.state_bytes() == grown and sized == ["loss"]  # a small table is sized whole
    big.delete(("0", "TRAIN", "layer7"))
    sized.clear()
    assert store.state_bytes() < grown and sized == []  # a deleted entry only subtracts


def test_a_table_that_outgrows_small_keeps_exact_sizes():
    store = MemoryStore()
    table = store.trial("a").table("series")
    reference = MemoryStore()
    for i in range(3 * SMALL_TABLE):
        table.put(i + 1000, [float(i)] * i)
        store.state_bytes()  # sized at every size on the way
    for i in range(3 * SMALL_TABLE):
        reference.trial("a").table("series").put(i + 1000, [float(i)] * i)
    assert store.state_bytes() == reference.state_bytes()


def test_a_fixed_table_sizes_an_entry_when_added_and_only_grows():
    store = MemoryStore()
    steps = store.trial("a").table("steps", fixed=True)
    steps.put("loss", 0)
    one = store.state_bytes()
    steps.entries["loss"] = 10_000    # an existing key: same size, nothing to tell
    steps.put("loss", 20_000)        # or told: still counted once
    assert store.state_bytes() == one
    with pytest.raises(TypeError, match="only grows"):
        steps.delete("loss")
    for i in range(3 * SMALL_TABLE):
        steps.put(f"series {i}", i)
    reference = MemoryStore()
    for key, value in steps.entries.items():
        reference.trial("a").table("steps", fixed=True).put(key, value)
    assert store.state_bytes() == reference.state_bytes()


def test_a_dump_loads_into_another_store_as_it_was():
    store = MemoryStore()
    store.trial("a").table(0).put(("0", "TRAIN", "loss"), [1.0, 2.0])
    store.trial("a").table("steps", fixed=True).put(("0", "TRAIN", "loss"), 7)
    store.trial("b").table(0).put(("0", "TRAIN", "loss"), [3.0])
    other = MemoryStore()
    other.trial("a").table("stale").put(None, "replaced")
    assert other.load(store.dump(["a", "c"])) == ["a"]
    assert other.dump(["a"]) == store.dump(["a"]) and other.trials() == ["a"]
    fresh = MemoryStore()
    fresh.load(store.dump(["a"]))
    assert other.state_bytes() == fresh.state_bytes()  # the replaced table is no longer counted


def test_shared_objects_count_nothing():
    constant = "TRAINING-MODE"
    plain, sharing = MemoryStore(), MemoryStore(shared=[constant])
    for store in (plain, sharing):
        store.trial("a").table("series").put(("0", constant, "loss"), 1.5)
    assert plain.state_bytes() - sharing.state_bytes() == deep_size(constant)
