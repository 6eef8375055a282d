"""What trainsentry costs a training process: one publish call, and the hook on a training step.

- Publish cost: the time one ``TensorPublisher.scalar`` / ``.tensor`` (64x64 float32) call takes on
  the training thread, p50 and p99, publishing in bursts of 20 calls per simulated 1 ms step to a
  real broker (so the sender thread is busy beside it, as in training).
- Hook overhead: the time of 100 CPU training steps with ``TrainsentryHook`` registered at
  ``save_interval`` 100 and 1, against the same 100 steps of the same model without it, in
  alternating blocks (median of the paired ratios). Two models: the examples' digits MLP
  (64-64-64-64-10, batch 64, a step of a fraction of a millisecond: the worst case for a fixed
  per-step cost) and a wider one (784-512-512-512-10, batch 256). Every saved step sends the
  weights, biases, gradients, activation inputs and loss. What a block sent is delivered before
  the next block starts.

The digits step is almost all Python dispatch, so it holds the GIL nearly all the time: the
sender thread's work for a saved step (encoding and batching ~20 events, a millisecond or two of
Python) is then added to training rather than overlapped with it. The wide step spends its time in
matrix products that release the GIL, as real models do.

The broker is ``$KAFKA_BOOTSTRAP_SERVERS``, else the embedded one on this machine (it then takes
CPU from the same cores). ``python benchmarks/producer_overhead.py`` prints the figures.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainsentry.producers import SaveConfig, SenderSettings, TensorPublisher  # noqa: E402

PUBLISH_CALLS = 10_000
BURST = 20            # publish calls per simulated step
STEP_PAUSE_S = 0.001  # the rest of that step
WARM_UP_STEPS = 50
STEPS_PER_BLOCK = 100
ROUNDS = {"digits": 30, "wide": 4}
MODELS = {  # layer widths, batch
    "digits": ((64, 64, 64, 64, 10), 64),
    "wide": ((784, 512, 512, 512, 10), 256),
}


def run() -> dict[str, Any]:
    """Every figure, by name (µs and percent); strings are notes."""
    figures: dict[str, Any] = {}
    with _broker() as (bootstrap_servers, where):
        figures["broker"] = where
        figures.update(publish_cost(bootstrap_servers))
        try:
            import torch  # noqa: F401
        except ImportError:
            figures["hook"] = "PyTorch is not installed: no hook figures"
            return figures
        for model in ("digits", "wide"):
            figures.update(hook_overhead(bootstrap_servers, model))
    return figures


# --- publish cost ----------------------------------------------------------------------------

def publish_cost(bootstrap_servers: str) -> dict[str, float]:
    out: dict[str, float] = {}
    weights = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
    calls = {
        "scalar": lambda p, step: p.scalar("loss", 0.5, step=step, collections=("losses",)),
        "tensor_64x64": lambda p, step: p.tensor("fc1.weight", weights, step=step,
                                                 collections=("weights",)),
    }
    for kind, call in calls.items():
        publisher = TensorPublisher(f"bench-publish-{kind}", bootstrap_servers=bootstrap_servers,
                                    save_config=SaveConfig(save_interval=1))
        publisher.flush(10.0)  # connected before timing
        durations = np.empty(PUBLISH_CALLS)
        for step in range(PUBLISH_CALLS):
            started = time.perf_counter_ns()
            call(publisher, step)
            durations[step] = time.perf_counter_ns() - started
            if step % BURST == BURST - 1:
                time.sleep(STEP_PAUSE_S)
        publisher.close()
        stats = publisher.stats()
        out[f"publish_{kind}_p50_us"] = float(np.percentile(durations, 50)) / 1000
        out[f"publish_{kind}_p99_us"] = float(np.percentile(durations, 99)) / 1000
        out[f"publish_{kind}_delivered_pct"] = 100.0 * stats.sent / PUBLISH_CALLS
    return out


# --- hook overhead ---------------------------------------------------------------------------

def hook_overhead(bootstrap_servers: str, model_name: str) -> dict[str, float]:
    """Blocks of steps without the hook and with it (save_interval 100, then 1), alternating on
    one model, so that whatever else the machine does weighs on both alike."""
    import torch
    from torch import nn

    from trainsentry.producers.torch_hook import TrainsentryHook

    widths, batch = MODELS[model_name]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # steadier figures on a shared machine; the ratio is what counts
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(widths[0], widths[1]), nn.ReLU(),
                          nn.Linear(widths[1], widths[2]), nn.ReLU(),
                          nn.Linear(widths[2], widths[3]), nn.Tanh(),
                          nn.Linear(widths[3], widths[4]))
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(batch, widths[0])
    y = torch.randint(0, widths[-1], (batch,))
    settings = SenderSettings(bootstrap_servers=bootstrap_servers)
    hooks = {interval: TrainsentryHook(trial=f"bench-hook-{model_name}-{interval}",
                                       save_interval=interval, settings=settings)
             for interval in (100, 1)}
    block_seconds: dict[int | None, list[float]] = {None: [], 100: [], 1: []}
    try:
        for _ in range(WARM_UP_STEPS):
            _train_step(model, loss_fn, optimizer, x, y)
        for _ in range(ROUNDS[model_name]):
            for interval in block_seconds:
                hook = hooks.get(interval)
                if hook is not None:
                    hook.register(model, loss=loss_fn)
                started = time.perf_counter()
                for _ in range(STEPS_PER_BLOCK):  # a hook block holds one step saved at 100
                    _train_step(model, loss_fn, optimizer, x, y)
                block_seconds[interval].append(time.perf_counter() - started)
                if hook is not None:
                    hook.remove()
                    hook.publisher.flush(60.0)  # what a block sent does not weigh on the next
    finally:
        for hook in hooks.values():
            hook.close(timeout=5.0)
        torch.set_num_threads(threads)
    base = block_seconds[None]
    out = {f"hook_{model_name}_step_without_hook_us": statistics.median(base) / STEPS_PER_BLOCK * 1e6}
    for interval in (100, 1):
        ratios = [with_hook / without - 1 for with_hook, without in zip(block_seconds[interval], base)]
        out[f"hook_{model_name}_overhead_interval_{interval}_pct"] = 100 * statistics.median(ratios)
    return out


def _train_step(model, loss_fn, optimizer, x, y) -> None:
    optimizer.zero_grad()
    loss_fn(model(x), y).backward()
    optimizer.step()


@contextlib.contextmanager
def _broker() -> Iterator[tuple[str, str]]:
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if existing:
        yield existing, f"KAFKA_BOOTSTRAP_SERVERS={existing}"
        return
    from trainsentry.consumers.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        yield broker.bootstrap_servers, "embedded, on this machine"


if __name__ == "__main__":
    for name, value in run().items():
        print(f"{name:48s} {value:10.2f}" if isinstance(value, float) else f"{name:48s} {value}")
