"""A known run for the report's tests: two trials whose loss stops falling at step 100, weights that
stop moving there, two workers, an EVAL loss, the metric in log lines, one invalid record, and the
configuration that alerts on it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from trainsentry.protocol import LogEvent, ScalarEvent, TensorEvent, encode

TRIALS = ("run-a", "run-b")
PLATEAU_AT = 100
STEPS = 160

CONFIG = """\
[[rules]]
type = "LossNotDecreasing"
num_steps = 20

[[rules]]
type = "WeightUpdateRatio"

[[metrics]]
name = "train_loss"
regex = "loss=([-+0-9.eE]+|nan|inf)"

[objective]
metric = "train_loss"
type = "Minimize"
"""


def loss_at(trial: str, step: int, noise: float) -> float:
    loss = 2 * math.exp(-step / 30) + 0.3 if step < PLATEAU_AT else 0.45 + noise
    return loss * (0.8 if trial == "run-b" else 1.0)  # run-b ends lower: ranked first


def write_known_run(folder: Path) -> tuple[Path, Path]:
    """The replay file and the configuration of the known run."""
    rng = np.random.default_rng(0)
    replay = folder / "known-run.msgpack"
    with open(replay, "wb") as out:
        for trial in TRIALS:
            weights = rng.normal(scale=0.1, size=(16, 16)).astype(np.float32)
            for step in range(STEPS):
                for worker in ("0", "1"):
                    loss = loss_at(trial, step, 0.01 * rng.normal())
                    ts = 1_700_000_000.0 + step
                    out.write(encode(ScalarEvent(trial, ts, "TRAIN", step, "loss", loss, worker,
                                                 collections=("losses",))))
                    if step % 10 == 0:
                        out.write(encode(ScalarEvent(trial, ts, "EVAL", step // 10, "loss", 1.1 * loss, worker,
                                                     collections=("losses",))))
                        if step < PLATEAU_AT:
                            weights += rng.normal(scale=1e-2, size=weights.shape).astype(np.float32)
                        out.write(encode(TensorEvent.from_array(
                            weights, trial=trial, ts=ts, mode="TRAIN", step=step, name="fc1.weight",
                            worker=worker, collections=("weights",))))
                        out.write(encode(LogEvent(trial, ts, "stdout", f"step {step} loss={loss:.4f}",
                                                  step // 10, worker, final=step == STEPS - 10 or None)))
        out.write(encode({"v": 1, "type": "scalar", "trial": "run-a"}))  # invalid: counted, skipped
    config = folder / "known-run.toml"
    config.write_text(CONFIG)
    return replay, config
