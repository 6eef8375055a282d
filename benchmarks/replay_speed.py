"""Replay throughput: ``trainsentry replay``'s path over a file, pinned to one core.

Three loops over the same file, alternating: a bare ``msgpack.Unpacker`` loop (the floor), the
protocol's reader (decode + validate, ``iter_file``), and the replay path itself
(``replay.replay_files``: the replay file source through the driver, with all four rules and four
metric definitions, into no sink).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import msgpack

from benchmarks import workload
from benchmarks.report import Row, Section, Target, number
from benchmarks.stats import median
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.replay import EventFilter, ReplaySummary, replay_files
from trainsentry.protocol import FileReadResult, encode, iter_file
from trainsentry.rules.config import load_config

TARGET_EVENTS_PER_SECOND = 250_000


def write_events(path: Path, trials: int, steps: int) -> int:
    count = 0
    with open(path, "wb") as stream:
        for event in workload.scalar_events(trials, steps):
            stream.write(encode(event))
            count += 1
    return count


def bare_decode(path: Path) -> int:
    with open(path, "rb") as stream:
        return sum(1 for _ in msgpack.Unpacker(stream, raw=False))


def decode_and_validate(path: Path) -> int:
    with open(path, "rb") as stream:
        return sum(1 for _ in iter_file(stream, FileReadResult()))


def replay(path: Path, engine: Engine) -> int:
    summary = ReplaySummary()
    asyncio.run(replay_files(engine, [path], [], EventFilter(), summary))
    return summary.events


@contextmanager
def one_core() -> Iterator[None]:
    """Pin this process to one CPU for the duration of the block (where the OS allows it)."""
    try:
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(before)})
    except (AttributeError, OSError):
        yield
        return
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def timed(loop: Callable[[], int], expected: int) -> float:
    started = time.perf_counter()
    count = loop()
    elapsed = time.perf_counter() - started
    assert count == expected, (count, expected)
    return count / elapsed


def run(trials: int, steps: int, rounds: int) -> Section:
    rates: dict[str, list[float]] = {"bare": [], "validate": [], "replay": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scalars.msgpack"
        count = write_events(path, trials, steps)
        config = load_config(workload.write_config(Path(tmp)))
        with one_core():
            for _ in range(rounds):
                rates["bare"].append(timed(lambda: bare_decode(path), count))
                rates["validate"].append(timed(lambda: decode_and_validate(path), count))
                engine = Engine(config)
                rates["replay"].append(timed(lambda: replay(path, engine), count))
    bare, validated, replayed = (median(rates[k]) for k in ("bare", "validate", "replay"))
    ratios = [r / b for r, b in zip(rates["replay"], rates["bare"])]
    out = Section("Replay throughput")
    out.rows.append(Row("scalar events from a file, one core, all 4 rules",
                        f"{number(replayed)} events/s", f"bare msgpack {number(bare)} events/s",
                        f"{median(ratios):.2f}",
                        Target(f">= {TARGET_EVENTS_PER_SECOND:,} events/s",
                               replayed >= TARGET_EVENTS_PER_SECOND)))
    out.rows.append(Row("decode + validate only (protocol.iter_file)", f"{number(validated)} events/s",
                        "bare msgpack", f"{validated / bare:.2f}"))
    out.notes.append(
        f"{count:,} scalar events ({path.name}, {trials} trials x {steps} steps x "
        f"{len(workload.SCALAR_SERIES)} series); {rounds} alternating rounds, medians; replay "
        "rounds: " + ", ".join(number(r) for r in rates["replay"]) + " events/s.")
    return out
