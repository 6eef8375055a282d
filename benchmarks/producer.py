"""Training-side cost: the hook's overhead on a training step and the cost of one publish call.

The figures come from ``benchmarks/producer_overhead.py`` (its ``run()``); this module only puts
them in the table, with the targets.
"""

from __future__ import annotations

import importlib
from typing import Any

from benchmarks.report import Row, Section, Target, number

TARGET_SCALAR_PUBLISH_P50_US = 20.0


def section(figures: dict[str, Any]) -> Section:
    out = Section("Producer")
    for key, value in figures.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            out.notes.append(f"{key}: {value}")
            continue
        target = None
        if "scalar" in key and "p50" in key and "publish" in key:
            target = Target(f"<= {TARGET_SCALAR_PUBLISH_P50_US:g} us", value <= TARGET_SCALAR_PUBLISH_P50_US)
        out.rows.append(Row(key.replace("_", " "), number(value), target=target))
    return out


def run() -> Section:
    try:
        overhead = importlib.import_module("benchmarks.producer_overhead")
    except ModuleNotFoundError as exc:
        if exc.name != "benchmarks.producer_overhead":
            raise
        out = Section("Producer")
        out.notes.append("benchmarks/producer_overhead.py is not in this tree: no producer figures.")
        return out
    return section(overhead.run())
