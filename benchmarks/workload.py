"""The synthetic training telemetry every benchmark feeds: the rules, the scalars, the weights.

Deterministic (fixed seeds), shaped like a real run: many trials interleaved step by step, a few
scalar series and many weight tensors per trial, losses that mostly fall.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from trainsentry.protocol import Event, ScalarEvent, TensorEvent, encode

T0 = 1_700_000_000.0
WEIGHT_SHAPE = (64, 64)  # float32: 16 KiB of data per tensor
WEIGHT_BYTES = math.prod(WEIGHT_SHAPE) * 4

# All four built-in rules and four metric definitions, in SageMaker's JSON form.
RULES_CONFIG = {
    "DebugRuleConfigurations": [
        {"RuleConfigurationName": "LossNotDecreasing",
         "RuleParameters": {"rule_to_invoke": "LossNotDecreasing", "num_steps": "10"}},
        {"RuleConfigurationName": "WeightUpdateRatio",
         "RuleParameters": {"rule_to_invoke": "WeightUpdateRatio"}},
        {"RuleConfigurationName": "SaturatedActivation",
         "RuleParameters": {"rule_to_invoke": "SaturatedActivation"}},
        {"RuleConfigurationName": "PoorWeightInitialization",
         "RuleParameters": {"rule_to_invoke": "PoorWeightInitialization"}},
    ],
    "MetricDefinitions": [
        {"Name": "train_loss", "Regex": r"train_loss=([-+0-9.eE]+)"},
        {"Name": "val_loss", "Regex": r"val_loss=([-+0-9.eE]+)"},
        {"Name": "accuracy", "Regex": r"accuracy=([0-9.]+)"},
        {"Name": "learning_rate", "Regex": r"lr=([-+0-9.eE]+)"},
    ],
}

# The scalar series of one trial: (name, collections).
SCALAR_SERIES = (
    ("loss", ("losses",)),
    ("accuracy", ("metrics",)),
    ("learning_rate", ("scalars",)),
    ("grad_norm", ("scalars",)),
)


def write_config(directory: Path) -> Path:
    path = directory / "rules.json"
    path.write_text(json.dumps(RULES_CONFIG, indent=2))
    return path


def trial_name(index: int) -> str:
    return f"trial-{index:04d}"


def scalar_events(trials: int, steps: int) -> Iterator[ScalarEvent]:
    """``trials x steps x 4`` scalar events, step by step across trials; the loss falls, noisily."""
    rng = np.random.default_rng(7)
    noise = rng.normal(scale=0.01, size=(steps, trials))
    for step in range(steps):
        for t in range(trials):
            trial = trial_name(t)
            loss = 2.0 * math.exp(-step / 200) + float(noise[step, t])
            values = (loss, 1.0 - loss / 2.0, 1e-3, 1.0 + loss)
            for (name, collections), value in zip(SCALAR_SERIES, values):
                yield ScalarEvent(trial=trial, ts=T0 + step * 0.1, mode="TRAIN", step=step, name=name,
                                  value=value, collections=collections)


def weight_events(trials: int, layers: int, steps: int, seed: int = 11) -> Iterator[TensorEvent]:
    """``trials x layers x steps`` float32 weight tensors of :data:`WEIGHT_SHAPE` that train slowly."""
    rng = np.random.default_rng(seed)
    current: dict[tuple[int, int], np.ndarray] = {}
    for step in range(steps):
        for t in range(trials):
            for layer in range(layers):
                w = current.get((t, layer))
                if w is None:
                    w = rng.normal(scale=0.05, size=WEIGHT_SHAPE).astype(np.float32)
                else:
                    w = w + rng.normal(scale=1e-4, size=WEIGHT_SHAPE).astype(np.float32)
                current[(t, layer)] = w
                yield TensorEvent.from_array(w, trial=trial_name(t), ts=T0 + step, mode="TRAIN",
                                             step=step, name=f"layer{layer:02d}.weight",
                                             collections=("weights",))


def keyed_records(events: Iterable[Event]) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) as the training side publishes them: keyed by trial."""
    for event in events:
        yield event.trial.encode(), encode(event)
