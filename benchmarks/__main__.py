"""``python -m benchmarks``: run the measurements, print the table, write BENCHMARKS.md.

    python -m benchmarks                       # everything (about 5 minutes on 2 cores)
    python -m benchmarks --only latency        # one measurement (repeatable)
    python -m benchmarks --quick --no-write    # a smoke run at small sizes
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import cluster, machine
from benchmarks.report import Section, render_markdown, render_text, write_figures

MEASUREMENTS = ("throughput", "replay", "latency", "producer", "memory", "recovery", "rules")


@dataclass(frozen=True)
class Scale:
    """How much each measurement does."""

    scalar_trials: int = 100
    scalar_steps: int = 500          # x 4 series: 200,000 scalar events
    tensor_trials: int = 20
    tensor_layers: int = 20
    tensor_steps: int = 50           # 20,000 weight tensors, 328 MB
    throughput_rounds: int = 9
    replay_trials: int = 100
    replay_steps: int = 750          # 300,000 scalar events
    replay_rounds: int = 5
    latency_loads: tuple[tuple[int, float, int], ...] = ((1_000, 12.0, 2), (10_000, 10.0, 4))
    memory_trials: int = 100
    memory_layers: int = 50
    recovery_sizes: tuple[int, ...] = (2_000, 200_000)  # events of history in the partition
    recovery_rounds: int = 3
    rule_cost_layers: int = 20
    rule_cost_steps: int = 40
    rule_cost_rounds: int = 3


QUICK = Scale(scalar_trials=50, scalar_steps=100, tensor_trials=10, tensor_layers=10, tensor_steps=10,
              throughput_rounds=2, replay_trials=50, replay_steps=100, replay_rounds=2,
              latency_loads=((1_000, 3.0, 1), (10_000, 3.0, 1)), memory_trials=20,
              recovery_sizes=(2_000, 20_000), recovery_rounds=1,
              rule_cost_layers=5, rule_cost_steps=10, rule_cost_rounds=1)


def measurements(scale: Scale) -> dict[str, Callable[[str], Section]]:
    """Name -> a function of the bootstrap servers returning its section (imported when run)."""

    def throughput(servers: str) -> Section:
        from benchmarks import throughput
        return throughput.run(
            servers, throughput.scalar_stream(scale.scalar_trials, scale.scalar_steps),
            throughput.tensor_stream(scale.tensor_trials, scale.tensor_layers, scale.tensor_steps),
            scale.throughput_rounds)

    def replay(servers: str) -> Section:
        from benchmarks import replay_speed
        return replay_speed.run(scale.replay_trials, scale.replay_steps, scale.replay_rounds)

    def latency(servers: str) -> Section:
        from benchmarks import latency
        return latency.run(servers, list(scale.latency_loads))

    def producer(servers: str) -> Section:
        from benchmarks import producer
        return producer.run()

    def memory(servers: str) -> Section:
        from benchmarks import memory
        return memory.run(servers, scale.memory_trials, scale.memory_layers)

    def recovery(servers: str) -> Section:
        from benchmarks import recovery
        return recovery.run(servers, scale.recovery_sizes, scale.recovery_rounds)

    def rules(servers: str) -> Section:
        from benchmarks import rule_cost
        return rule_cost.run(scale.rule_cost_layers, scale.rule_cost_steps, scale.rule_cost_rounds)

    return {"throughput": throughput, "replay": replay, "latency": latency, "producer": producer,
            "memory": memory, "recovery": recovery, "rules": rules}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=MEASUREMENTS, help="run only this (repeatable)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not figures")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md")
    parser.add_argument("--output", type=Path, default=machine.REPO / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    # The engine's notices (e.g. "rule X selects no series") would interleave with the table.
    logging.getLogger("trainsentry").setLevel(logging.ERROR)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    command = shlex.join(["python", "-m", "benchmarks", *(sys.argv[1:] if argv is None else argv)])
    chosen = args.only or list(MEASUREMENTS)
    available = measurements(QUICK if args.quick else Scale())
    sections: list[Section] = []
    with cluster.cluster() as servers:
        for name in chosen:
            started = time.monotonic()
            print(f"{name} ...", file=sys.stderr, flush=True)
            sections.append(available[name](servers))
            print(f"{name}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    print(render_text(sections))
    for section in sections:
        for note in section.notes:
            print(f"  {section.title}: {note}")
    if not args.no_write:
        write_figures(args.output, render_markdown(sections, machine.describe(), command))
        print(f"figures written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
