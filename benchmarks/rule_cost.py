"""What each built-in rule costs per tensor it evaluates, beside WeightUpdateRatio.

One stream of 64x64 float32 tensors (4,096 elements, new values at every step), already decoded,
goes through an :class:`Engine` holding one rule at a time, configured to select every tensor of
the stream; the same stream through an engine with no rule gives the engine's own cost, which is
taken off. Best of the rounds, alternating the rules within each round. ClassImbalance is fed
label and prediction pairs of 4,096 samples instead; StalledTrainingRule does no work per tensor
(it is driven by the clock) and is not listed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from benchmarks.report import Row, Section, Target, number
from trainsentry.consumers.engine import Engine
from trainsentry.protocol import Event, TensorEvent
from trainsentry.rules.config import Config, RuleConfig

ELEMENTS = 64 * 64
ALL_TENSORS = {"tensor_regex": ".*"}

# How each rule is configured to select the stream (its other parameters at their defaults).
RULES: dict[str, dict[str, str]] = {
    "WeightUpdateRatio": ALL_TENSORS,
    "LossNotDecreasing": {"tensor_regex": ".*", "use_losses_collection": "False"},
    "SaturatedActivation": ALL_TENSORS,
    "PoorWeightInitialization": {"activation_inputs_regex": ".*", "steps": "1000000"},
    "ExplodingTensor": ALL_TENSORS,
    "VanishingGradient": ALL_TENSORS,
    "DeadRelu": ALL_TENSORS,
    "UnchangedTensor": ALL_TENSORS,
    "AllZero": ALL_TENSORS,
    "TensorVariance": {"tensor_regex": ".*", "max_threshold": "1e9"},
    "Overfit": ALL_TENSORS,
    "Overtraining": ALL_TENSORS,
    "ClassImbalance": {},
}


def tensor_stream(layers: int, steps: int, seed: int = 5) -> list[Event]:
    rng = np.random.default_rng(seed)
    return [TensorEvent.from_array(rng.standard_normal((64, 64), dtype=np.float32), trial="cost",
                                   ts=float(step), mode="TRAIN", step=step, name=f"l{layer}.tanh_input",
                                   collections=("weights", "gradients"))
            for step in range(steps) for layer in range(layers)]


def pair_stream(steps: int, seed: int = 6) -> list[Event]:
    rng = np.random.default_rng(seed)
    events: list[Event] = []
    for step in range(steps):
        for name in ("labels", "predictions"):
            classes = rng.integers(0, 10, ELEMENTS).astype(np.int64)
            events.append(TensorEvent.from_array(classes, trial="cost", ts=float(step), mode="TRAIN",
                                                 step=step, name=name))
    return events


def seconds_per_event(make: Callable[[], Engine], events: list[Event]) -> float:
    engine = make()
    started = time.perf_counter()
    engine.process_many(events)
    return (time.perf_counter() - started) / len(events)


def run(layers: int = 20, steps: int = 40, rounds: int = 3) -> Section:
    tensors, pairs = tensor_stream(layers, steps), pair_stream(layers * steps // 2)
    streams = {name: (pairs if name == "ClassImbalance" else tensors) for name in RULES}
    best: dict[str, float] = {}
    for _ in range(rounds):
        for label, events in (("(engine alone, tensors)", tensors), ("(engine alone, pairs)", pairs)):
            cost = seconds_per_event(lambda: Engine(Config()), events)
            best[label] = min(best.get(label, cost), cost)
        for name, params in RULES.items():
            config = Config(rules=(RuleConfig.of(name, **params),))
            cost = seconds_per_event(lambda config=config: Engine(config), streams[name])
            best[name] = min(best.get(name, cost), cost)
    section = Section("rule cost per element")
    reference = best["WeightUpdateRatio"] - best["(engine alone, tensors)"]
    for name in RULES:
        alone = best["(engine alone, pairs)" if name == "ClassImbalance" else "(engine alone, tensors)"]
        cost = max(0.0, best[name] - alone)
        section.rows.append(Row(
            f"{name} (ns)", number(cost * 1e9 / ELEMENTS, 2),
            baseline=f"WeightUpdateRatio {number(reference * 1e9 / ELEMENTS, 2)}",
            ratio=number(cost / reference, 2) if reference > 0 else "",
            target=Target("<= WeightUpdateRatio, or a reason", cost <= reference or name in REASONS)))
    section.notes.append("64x64 float32 tensors through an Engine holding one rule, the engine's own "
                         "cost taken off; ClassImbalance on label/prediction pairs of 4,096 samples")
    section.notes += [f"{name}: {why}" for name, why in REASONS.items()]
    return section


# Rules allowed to cost more than WeightUpdateRatio per element, and why.
REASONS = {
    "SaturatedActivation": "activity per node: two comparisons and a NaN test on every element, "
                           "counted along the batch axis in float64 (WeightUpdateRatio is one BLAS dot)",
    "DeadRelu": "the same per-node activity count as SaturatedActivation, with one comparison",
    "VanishingGradient": "mean |g| over the non-NaN elements: abs, a NaN mask and a sum, three passes",
    "TensorVariance": "population variance over the non-NaN elements: a mask, a mean and squared "
                      "deviations",
    "ClassImbalance": "class counts of labels and of mispredictions with np.unique, a sort of "
                      "every sample",
    "UnchangedTensor": "one allclose per earlier saved step of its window (num_steps - 1) when the "
                       "values change only within tolerance; exact repeats and clear changes are cheaper",
    "PoorWeightInitialization": "a variance and a 5th/95th percentile (a partial sort) per tensor, "
                                "only in the first `steps` steps of a run",
}
