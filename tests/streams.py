"""Synthetic training telemetry for tests: loss series, weights, logs, configs."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from trainsentry.consumers.engine import Engine
from trainsentry.protocol import AlertEvent, Event, LogEvent, ScalarEvent, TensorEvent
from trainsentry.rules.config import load_config

T0 = 1_700_000_000.0


def losses(trial: str, values: Sequence[float], every: int = 4, worker: str = "0", name: str = "loss",
           mode: str = "TRAIN", start: int = 0) -> list[ScalarEvent]:
    """A loss saved every ``every`` steps from ``start``."""
    return [ScalarEvent(trial=trial, ts=T0 + start + i * every, mode=mode, step=start + i * every,
                        name=name, value=float(v), worker=worker, collections=("losses",))
            for i, v in enumerate(values)]


def weights(trial: str, steps: int, frozen_after: int, shape=(8, 8), worker: str = "0") -> list[TensorEvent]:
    """One weight tensor that trains, then stops moving (WeightUpdateRatio fires as too small)."""
    rng = np.random.default_rng(zlib.crc32(f"{trial}/{worker}".encode()))  # same in every run
    w = rng.normal(size=shape).astype(np.float32)
    out = []
    for step in range(steps):
        if step < frozen_after:
            w = w + rng.normal(scale=0.01, size=shape).astype(np.float32)
        out.append(TensorEvent.from_array(w, trial=trial, ts=T0 + step, mode="TRAIN", step=step,
                                          name="fc1.weight", worker=worker, collections=("weights",)))
    return out


def log_lines(trial: str, lines: Iterable[str], worker: str = "0") -> list[LogEvent]:
    return [LogEvent(trial=trial, ts=T0 + i, stream="stdout", line=line, seq=i, worker=worker)
            for i, line in enumerate(lines)]


def interleave(*streams: Sequence[Event]) -> list[Event]:
    """Round-robin merge that keeps each stream's own order."""
    out: list[Event] = []
    longest = max(len(s) for s in streams)
    for i in range(longest):
        out.extend(s[i] for s in streams if i < len(s))
    return out


SAGEMAKER_CONFIG = {
    "DebugRuleConfigurations": [
        {"RuleConfigurationName": "LossNotDecreasing",
         "RuleParameters": {"rule_to_invoke": "LossNotDecreasing", "num_steps": "10"}},
        {"RuleConfigurationName": "WeightUpdateRatio",
         "RuleParameters": {"rule_to_invoke": "WeightUpdateRatio"}},
    ],
    "MetricDefinitions": [{"Name": "val_loss", "Regex": "val_loss=(.*?);"}],
}


def write_config(directory: Path, config: dict | None = None) -> Path:
    path = directory / "rules.json"
    path.write_text(json.dumps(config or SAGEMAKER_CONFIG))
    return path


def replay_alerts(config_path: Path, events: Iterable[Event]) -> dict[str, AlertEvent]:
    """What the engine alone makes of ``events``: the reference for every live run."""
    engine = Engine(load_config(config_path))
    out = [o for e in events for o in engine.process(e)] + engine.end_of_input()
    return {a.id: a for a in out if isinstance(a, AlertEvent)}
