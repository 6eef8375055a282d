"""One curve, (step, value) points in step order, held in bounded memory at an even resolution.

The points are cut into buckets of ``width`` consecutive points; a bucket keeps two of them, its
lowest and its highest finite point, except that a non-finite value (NaN, an infinity) takes the
place of the lowest, so an anomaly is never decimated away. When ``keep`` buckets are full, each
two neighbours merge into one and ``width`` doubles: every part of the curve, old or new, has the
same resolution, and its spikes and anomalies survive. The newest point is always shown. A curve of a million steps costs what one of
``2 * keep`` points costs (16 bytes a point).

>>> curve = DecimatedSeries(keep=4)
>>> for step, value in enumerate([5.0, 4.0, 9.0, 3.0, 2.5, float("nan"), 2.0, 1.5]):
...     _ = curve.append(step, value)
>>> curve.width, curve.steps()  # buckets of 4: 2 and 3 (highest, lowest), 4 and 5 (NaN); 7 newest
(4, [2, 3, 4, 5, 7])
>>> curve.append(6, 1.0)  # at or below the newest step: refused
False
>>> curve.total, curve.refused
(8, 1)
"""

from __future__ import annotations

import math
from array import array

import numpy as np

DEFAULT_KEEP = 512  # buckets; two points each at most


class DecimatedSeries:
    """The (step, value) points of one curve; steps strictly increase."""

    __slots__ = ("_steps", "_values", "keep", "width", "total", "refused", "last_step",
                 "_last_value", "_low", "_high", "_filled")

    def __init__(self, keep: int = DEFAULT_KEEP) -> None:
        if keep < 2:
            raise ValueError(f"keep: expected at least 2 buckets, got {keep}")
        self.keep = keep
        self.width = 1          # points per bucket
        self.total = 0          # points appended, decimated ones included
        self.refused = 0        # points at or below the newest step (late or repeated)
        self.last_step: int | None = None
        self._last_value = math.nan
        # Two entries per full bucket (its lowest and highest point, possibly the same one).
        self._steps = array("q")
        self._values = array("d")
        # The bucket being filled: its lowest and highest point so far, and how many it has.
        self._low = self._high = (0, 0.0)
        self._filled = 0

    def __len__(self) -> int:
        return len(self.steps())

    def append(self, step: int, value: float) -> bool:
        """Add a point after the newest one; ``False`` (and counted) if ``step`` is not newer."""
        if self.last_step is not None and step <= self.last_step:
            self.refused += 1
            return False
        self.last_step, self._last_value = step, value
        self.total += 1
        if self._filled == 0 or _low_rank(value) < _low_rank(self._low[1]):
            self._low = (step, value)
        if self._filled == 0 or _high_rank(value) > _high_rank(self._high[1]):
            self._high = (step, value)
        self._filled += 1
        if self._filled == self.width:
            for point in sorted((self._low, self._high)):
                self._steps.append(point[0])
                self._values.append(point[1])
            self._filled = 0
            if len(self._steps) >= 2 * self.keep:
                self._merge()
        return True

    def points(self) -> tuple[list[int], list[float]]:
        """Steps and values, in step order, each step once."""
        steps, values = self._steps.tolist(), self._values.tolist()
        if self._filled:
            for point in sorted((self._low, self._high)):
                steps.append(point[0])
                values.append(point[1])
        if self.last_step is not None:
            steps.append(self.last_step)
            values.append(self._last_value)
        out_steps: list[int] = []
        out_values: list[float] = []
        for step, value in zip(steps, values, strict=True):
            if not out_steps or step > out_steps[-1]:
                out_steps.append(step)
                out_values.append(value)
        return out_steps, out_values

    def steps(self) -> list[int]:
        return self.points()[0]

    def values(self) -> list[float]:
        return self.points()[1]

    def value_at(self, step: int) -> float | None:
        """The value of the newest point at or before ``step`` (``None`` before the first)."""
        steps, values = self.points()
        index = int(np.searchsorted(np.asarray(steps, dtype=np.int64), step, side="right"))
        return values[index - 1] if index else None

    def nbytes(self) -> int:
        return self._steps.itemsize * len(self._steps) + self._values.itemsize * len(self._values)

    def _merge(self) -> None:
        """Two neighbouring buckets become one (4 entries -> 2); the width doubles."""
        steps = np.frombuffer(self._steps, dtype=np.int64)
        values = np.frombuffer(self._values, dtype=np.float64)
        whole = len(steps) // 4 * 4
        groups = values[:whole].reshape(-1, 4)
        finite = np.isfinite(groups)
        low = np.argmin(np.where(finite, groups, -np.inf), axis=1)
        high = np.argmax(np.where(finite, groups, -np.inf), axis=1)
        picks = np.sort(np.stack([low, high], axis=1), axis=1) + 4 * np.arange(len(groups))[:, None]
        chosen = np.concatenate([picks.ravel(), np.arange(whole, len(steps))])
        self._steps = array("q", steps[chosen].tobytes())
        self._values = array("d", values[chosen].tobytes())
        self.width *= 2


def _low_rank(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def _high_rank(value: float) -> float:
    return value if math.isfinite(value) else -math.inf


def json_value(value: float) -> float | None:
    """A value as JSON carries it: non-finite values become ``null`` (a gap in the curve)."""
    return value if math.isfinite(value) else None
