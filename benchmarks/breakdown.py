"""Where a scalar event's CPU goes: each piece of the sidecar's per-record path, timed alone.

Run as ``python -m benchmarks.breakdown``. Every piece runs over the same events as the throughput
benchmark, in memory (no broker), best of 5 runs; the figures are microseconds per event.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import msgpack

from benchmarks import workload
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.records import decode_record
from trainsentry.protocol import _UNPACKB_OPTIONS, ScalarEvent, decode, encode, validate
from trainsentry.rules.config import load_config


def per_event_us(loop: Callable[[], None], count: int, runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        loop()
        best = min(best, time.perf_counter() - started)
    return best / count * 1e6


def pieces(trials: int = 100, steps: int = 250) -> dict[str, float]:
    events = list(workload.scalar_events(trials, steps))
    values = [encode(event) for event in events]
    records = [SimpleNamespace(topic="t", partition=0, offset=i, key=e.trial.encode(), value=v,
                               timestamp=0) for i, (e, v) in enumerate(zip(events, values))]
    maps = [msgpack.unpackb(value, raw=False) for value in values]
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(workload.write_config(Path(tmp)))

    def unpack() -> None:
        for value in values:
            msgpack.unpackb(value, **_UNPACKB_OPTIONS)

    def validate_maps() -> None:
        for obj in maps:
            validate(obj)

    def build_dataclasses() -> None:
        for e in events:
            ScalarEvent(e.trial, e.ts, e.mode, e.step, e.name, e.value, e.worker, e.global_step,
                        e.collections)

    def decode_values() -> None:
        for value in values:
            decode(value)

    def decode_records() -> None:
        for record in records:
            decode_record(record)

    def run_engine() -> None:
        engine = Engine(config)
        for event in events:
            engine.process(event)

    loops = {
        "msgpack.unpackb": unpack,
        "protocol.validate (fast path)": validate_maps,
        "  of which building the ScalarEvent": build_dataclasses,
        "protocol.decode (unpack + validate)": decode_values,
        "records.decode_record (decode + key check)": decode_records,
        "Engine.process (4 rules, 4 metric definitions)": run_engine,
    }
    return {name: per_event_us(loop, len(events)) for name, loop in loops.items()}


def main() -> None:
    for name, micros in pieces().items():
        print(f"{name:48s} {micros:6.2f} us/event")


if __name__ == "__main__":
    main()
