"""Per-layer statistics of weights and gradients, from the tensor events the reader sees.

For a tensor of ``n`` elements ``x``, of which ``F`` are finite:

- ``norm``: the L2 norm of the finite elements, ``sqrt(sum x_i^2)``;
- ``mean_abs``: ``sum |x_i| / F``;
- ``variance``: ``sum (x_i - mean)^2 / F`` (``ddof=0``, as the writer's reductions);
- ``zeros``: the share of elements exactly 0, ``count(x_i == 0) / n``;
- ``nonfinite``: how many elements are NaN or infinite.

The four first are taken over the finite elements, so one NaN does not hide the others; the fifth
says how many were left out. An event that carries writer-side ``reductions`` instead of its bytes
gives what they allow: ``l2``, ``l1 / count``, ``variance`` (or ``std`` squared) and ``nan_count``
(the NaNs only; the share of zeros is unknown). The reductions are taken over every element, so
with a NaN among them the writer's numbers are NaN.

>>> from trainsentry.protocol import TensorEvent
>>> event = TensorEvent.from_array(np.array([3.0, -4.0, 0.0, np.nan], dtype=np.float32),
...                                trial="t", ts=0.0, mode="TRAIN", step=1, name="fc1.weight",
...                                collections=("weights",))
>>> stats = layer_stats(event)
>>> stats.norm, stats.mean_abs, stats.zeros, stats.nonfinite
(5.0, 2.3333333333333335, 0.25, 1.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from trainsentry.protocol import TensorEvent

STATS = ("norm", "mean_abs", "variance", "zeros", "nonfinite")
STAT_LABELS = {"norm": "L2 norm", "mean_abs": "mean |x|", "variance": "variance",
               "zeros": "share of zeros", "nonfinite": "non-finite elements"}
LAYER_COLLECTIONS = frozenset({"weights", "biases", "gradients"})
LAYER_SUFFIXES = (".weight", ".bias", ".grad")


@dataclass(frozen=True, slots=True)
class LayerStats:
    """The five statistics of one tensor at one step; ``None`` where the event does not tell."""

    norm: float | None
    mean_abs: float | None
    variance: float | None
    zeros: float | None
    nonfinite: float | None

    def items(self) -> list[tuple[str, float]]:
        """(statistic, value) for each statistic known, in :data:`STATS` order."""
        return [(name, value) for name in STATS if (value := getattr(self, name)) is not None]


def is_layer_tensor(event: TensorEvent) -> bool:
    """A weight, bias or gradient: by its collections, else by its name."""
    return (not LAYER_COLLECTIONS.isdisjoint(event.collections)
            or event.name.endswith(LAYER_SUFFIXES))


def layer_stats(event: TensorEvent) -> LayerStats | None:
    """The statistics of a weight or gradient event; ``None`` for other tensors or no numbers."""
    if not is_layer_tensor(event):
        return None
    data = event.array()
    if data is not None:
        return _from_array(data)
    if event.reductions:
        return _from_reductions(event.reductions)
    return None


def _from_array(data: np.ndarray) -> LayerStats | None:
    if data.size == 0:
        return None
    values = data.astype(np.float64, copy=False).ravel()
    finite_mask = np.isfinite(values)
    finite = values[finite_mask]
    nonfinite = int(values.size - finite.size)
    zeros = float(np.count_nonzero(values == 0)) / values.size
    if finite.size == 0:
        return LayerStats(None, None, None, zeros, float(nonfinite))
    with np.errstate(over="ignore"):  # an overflowing sum of squares is an infinite norm
        norm = math.sqrt(float(np.dot(finite, finite)))
        variance = float(finite.var())
    return LayerStats(norm, float(np.abs(finite).mean()), variance, zeros, float(nonfinite))


def _from_reductions(reductions: dict[str, float] | object) -> LayerStats | None:
    get = reductions.get  # type: ignore[attr-defined]
    count = get("count")
    l1 = get("l1")
    variance = get("variance")
    if variance is None and get("std") is not None:
        variance = get("std") ** 2
    mean_abs = l1 / count if l1 is not None and count else None
    stats = LayerStats(get("l2"), mean_abs, variance, None, get("nan_count"))
    return stats if stats.items() else None
