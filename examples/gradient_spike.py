"""A rule of your own: a gradient whose norm jumps far above its recent norms.

    [[rules]]
    type = "gradient_spike:GradientSpike"   # module:class; run the sidecar with examples/ on PYTHONPATH
    factor = 10
"""

from collections import deque

import numpy as np

from trainsentry.rules import Finding, Param, Rule
from trainsentry.rules.base import TRAINING_VIEWS
from trainsentry.rules.params import integer, names, number
from trainsentry.rules.selection import TensorSelection


class GradientSpike(Rule[deque]):
    """Fires when a gradient's L2 norm exceeds ``factor`` times the mean of its last ``window`` norms."""

    params = {
        "collection_names": Param(names, ("gradients",), "collections of gradient tensors"),
        "factor": Param(number(above=1), 10.0, "norm / mean of the previous norms that fires"),
        "window": Param(integer(minimum=1), 5, "previous norms averaged"),
    }

    def __init__(self, name=None, **values):
        super().__init__(name, **values)
        self.selection = TensorSelection(self.collection_names, ())
        self.views_by_mode = TRAINING_VIEWS  # gradients belong to training

    def selects(self, name, collections):
        return self.selection.matches(name, collections)

    def new_state(self):
        return deque(maxlen=self.window)  # this gradient's previous norms

    def observe(self, norms, obs):
        values = obs.array()
        if values is None or values.size == 0:  # sent as reductions only, or empty
            self.skip("no elements")
            return None
        with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN are ExplodingTensor's
            norm = float(np.linalg.norm(values.astype(np.float64).ravel()))
        full, mean = len(norms) == self.window, sum(norms) / max(len(norms), 1)
        norms.append(norm)
        if not (full and norm > self.factor * mean):  # NaN never fires
            return None
        return Finding(obs.trial, obs.worker, obs.mode, obs.step, (obs.name,),
                       f"{obs.name}: norm {norm:.6g} > {self.factor:g} x {mean:.6g}, the mean "
                       f"of its previous {self.window}", {"norm": norm, "mean": mean}, obs.ts)
