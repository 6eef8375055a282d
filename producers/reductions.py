"""Writer-side summaries of a tensor, sent instead of its bytes when it is too big to ship.

They are computed the way a rule computes them from the bytes: in float64, over every element,
NaN propagating (``nan_count`` says how many there were), variance with ``ddof=0``.

>>> reduce_array(np.array([[1.0, -3.0], [0.0, 2.0]], dtype=np.float32))["variance"]
3.5
>>> reduce_array(np.zeros((0, 4)))
{'count': 0.0, 'nan_count': 0.0}
"""

from __future__ import annotations

import numpy as np


def reduce_array(array: np.ndarray) -> dict[str, float]:
    """``min``, ``max``, ``mean``, ``std``, ``variance``, ``l1``, ``l2``, ``count`` and ``nan_count``."""
    values = np.asarray(array).astype(np.float64, copy=False).ravel()
    count = float(values.size)
    if values.size == 0:
        return {"count": 0.0, "nan_count": 0.0}
    with np.errstate(all="ignore"):  # infinities and overflow are data here, not warnings
        variance = float(values.var())
        return {
            "min": float(values.min()),
            "max": float(values.max()),
            "mean": float(values.mean()),
            "std": float(np.sqrt(variance)),
            "variance": variance,
            "l1": float(np.abs(values).sum()),
            "l2": float(np.sqrt(np.dot(values, values))),
            "count": count,
            "nan_count": float(np.count_nonzero(np.isnan(values))),
        }
