"""Training-side cost: the cost of one publish call, and the hook's overhead on a training step.

The figures come from ``benchmarks/producer_overhead.py`` (its ``run()``, which names them
``publish_<kind>_p50_us``, ``hook_<model>_overhead_interval_<n>_pct`` and so on); this module puts
them in the table beside their targets. Figures it does not know are listed as they are.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from benchmarks.report import Row, Section, Target, number

TARGET_SCALAR_PUBLISH_P50_US = 20.0
TARGET_HOOK_OVERHEAD_PCT = 5.0
PUBLISH = re.compile(r"publish_(?P<kind>\w+?)_p50_us")
HOOK = re.compile(r"hook_(?P<model>\w+?)_step_without_hook_us")
INTERVAL = re.compile(r"hook_(?P<model>\w+?)_overhead_interval_(?P<interval>\d+)_pct")


def section(figures: dict[str, Any]) -> Section:
    out = Section("Producer")
    left = dict(figures)
    for key in list(left):
        if match := PUBLISH.fullmatch(key):
            kind = match["kind"]
            p50, p99 = left.pop(key), left.pop(f"publish_{kind}_p99_us", float("nan"))
            delivered = left.pop(f"publish_{kind}_delivered_pct", None)
            target = None
            if kind == "scalar":
                target = Target(f"p50 <= {TARGET_SCALAR_PUBLISH_P50_US:g} us", p50 <= TARGET_SCALAR_PUBLISH_P50_US)
            out.rows.append(Row(f"one publish call ({kind.replace('_', ' ')}), p50 / p99",
                                f"{number(p50)} / {number(p99)} us", target=target))
            if delivered is not None:
                out.notes.append(f"publish {kind.replace('_', ' ')}: {number(delivered)}% of the calls "
                                 "delivered by the time the publisher closed")
    for key in list(left):
        if match := HOOK.fullmatch(key):
            model = match["model"]
            step = left.pop(key)
            overheads = sorted(
                ((int(m["interval"]), left.pop(k)) for k in list(left)
                 if (m := INTERVAL.fullmatch(k)) and m["model"] == model), reverse=True)
            at_100 = dict(overheads).get(100)
            target = None if at_100 is None else Target(
                f"<= {TARGET_HOOK_OVERHEAD_PCT:g}% at save_interval 100",
                at_100 <= TARGET_HOOK_OVERHEAD_PCT)
            out.rows.append(Row(
                f"hook overhead per training step, {model} model",
                ", ".join(f"{number(pct)}% at save_interval {interval}" for interval, pct in overheads),
                f"step without hook {number(step)} us", target=target))
    for key, value in left.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.rows.append(Row(key.replace("_", " "), number(value)))
        else:
            out.notes.append(f"{key.replace('_', ' ')}: {value}")
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
