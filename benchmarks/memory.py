"""Memory: the resident set of a fresh sidecar process holding 100 trials x 50 weight tensors.

``trainsentry run`` starts in its own process; 100 trials x 50 float32 weight tensors of 64x64 are
published twice (steps 0 and 1), so WeightUpdateRatio ends up holding one 16 KiB tensor per
series: 100 * 50 * 16 KiB = 78 MiB of tensor state. The sidecar's resident set (``VmRSS``) and its
peak (``VmHWM``) are read from ``/proc`` once its Prometheus endpoint says every event is consumed.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from benchmarks import cluster, processes, workload
from benchmarks.report import Row, Section, Target, number
from trainsentry.consumers.broker import free_port

TRIALS, LAYERS, STEPS = 100, 50, 2
MIB = 1024 * 1024
TARGET_FACTOR, TARGET_OVERHEAD_MIB = 1.5, 150


@dataclass(frozen=True)
class Footprint:
    idle_rss: int
    rss: int
    peak_rss: int
    state_bytes: int     # what the engine reports holding
    tensor_state: int    # what the rules must hold: one tensor per series
    seconds: float


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def scrape(port: int) -> dict[str, float]:
    """The sidecar's Prometheus metrics: name (labels summed over) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for match in re.finditer(r"^([a-z_]+)(?:\{[^}]*\})? ([-+0-9.eE]+|NaN)$", text, re.MULTILINE):
        totals[match[1]] = totals.get(match[1], 0.0) + float(match[2])
    return totals


async def wait_for(predicate, child: processes.Child, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        child.check_alive()
        try:
            if predicate():
                return
        except OSError:
            pass  # the endpoint is not up yet
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not reached within {timeout:.0f}s:\n{child.stderr()[-2000:]}")
        await asyncio.sleep(0.2)


async def measure(bootstrap_servers: str, trials: int, layers: int) -> Footprint:
    topics = cluster.fresh_topics("memory")
    await cluster.create(bootstrap_servers, topics)
    port = free_port()
    expected = trials * layers * STEPS
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = workload.write_config(Path(tmp))
            settings = cluster.sidecar_settings(bootstrap_servers, topics)
            with processes.sidecar(bootstrap_servers, topics, config, settings.group_id,
                                   settings.fetch_max_wait_ms, metrics_port=port) as child:
                await wait_for(lambda: scrape(port) is not None, child, 60, "the metrics endpoint")
                await asyncio.sleep(2.0)  # joined and idle
                idle = proc_status(child.pid)["VmRSS"]
                started = time.monotonic()
                await cluster.produce(bootstrap_servers, topics.tensors, workload.keyed_records(
                    workload.weight_events(trials, layers, STEPS)))
                await wait_for(lambda: scrape(port).get("trainsentry_events_consumed_total", 0) >= expected,
                               child, 120, f"{expected:,} events consumed")
                seconds = time.monotonic() - started
                await asyncio.sleep(1.0)  # the last batch's metrics and commit
                status = proc_status(child.pid)
                state = int(scrape(port).get("trainsentry_state_bytes", 0))
    finally:
        await cluster.drop(bootstrap_servers, topics)
    return Footprint(idle, status["VmRSS"], status["VmHWM"], state,
                     trials * layers * workload.WEIGHT_BYTES, seconds)


def section(found: Footprint, trials: int, layers: int) -> Section:
    budget = TARGET_FACTOR * found.tensor_state + TARGET_OVERHEAD_MIB * MIB
    out = Section("Memory")
    out.rows.append(Row(
        f"sidecar RSS holding {trials} trials x {layers} weight tensors",
        f"{number(found.rss / MIB)} MiB (peak {number(found.peak_rss / MIB)})",
        f"tensor state {number(found.tensor_state / MIB)} MiB",
        f"{found.rss / found.tensor_state:.2f}",
        Target(f"<= {TARGET_FACTOR} x state + {TARGET_OVERHEAD_MIB} MiB = {number(budget / MIB)} MiB",
               found.rss <= budget)))
    out.notes.append(
        f"A fresh `trainsentry run` process: {number(found.idle_rss / MIB)} MiB idle after joining "
        f"its group; {trials * layers * STEPS:,} tensors (2 steps) consumed in "
        f"{found.seconds:.1f} s; the engine reports {number(found.state_bytes / MIB)} MiB of state "
        "(state_bytes).")
    return out


def run(bootstrap_servers: str, trials: int = TRIALS, layers: int = LAYERS) -> Section:
    return section(asyncio.run(measure(bootstrap_servers, trials, layers)), trials, layers)
