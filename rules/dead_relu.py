"""DeadRelu: too many nodes of a ReLU layer are (almost) never active."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .base import Finding, Observation, Param, Rule
from .element_wise import as_float64, elements, tensor_finding
from .params import names, number, patterns
from .selection import TensorSelection

_PERCENT = number(at_least=0, at_most=100)


class DeadRelu(Rule[None]):
    """Fires when more than ``threshold_layer`` percent of a ReLU layer's nodes are dead.

    docs/rules.md, "DeadRelu". One tensor is one ReLU layer's input or output. Axis 0 is the batch
    and every other position a node (a 1-D tensor is one node with that many samples, a scalar one
    node with one sample). A value is active when ``x > 0`` (ReLU's output is positive exactly where
    its input is)::

        activity(node) = 100 * active / non-NaN values of the node
        dead(node)     = activity < threshold_inactivity          (a node with no non-NaN value is not dead)
        fires  iff  100 * dead nodes / nodes > threshold_layer    (strict)

    exactly as SaturatedActivation counts saturated nodes. +Inf is active, -Inf is not; bool and
    integer tensors are compared in float64 (``True`` is active).

    Inputs: ``tensor_regex`` (default ``.*relu_input, .*relu_output``) united with
    ``collection_names``; every selected tensor is taken as a ReLU layer's input or output. Modes:
    EVAL and TRAIN independently, GLOBAL-written events as their own series, PREDICT never (the
    shared mode choice: the rule has no ``mode`` parameter). Stateless.

    Decisions where the SageMaker documentation is silent: the modes above; a zero-size tensor (no
    samples or no nodes) has no dead node and is skipped and counted ("empty tensor"); a tensor
    sent with only ``reductions`` cannot show nodes and is skipped and counted.

    Examples
    --------
    The docs/rules.md vector: 2 of 3 nodes dead, 66.7 % > 50 %.

    >>> from trainsentry.rules.rule_run import RuleRun
    >>> batch = np.array([[-1.0, 0.0, 2.0], [-3.0, -0.5, 1.0], [0.0, 0.0, 4.0], [-2.0, -1.0, 3.0]])
    >>> run = RuleRun(DeadRelu())
    >>> print(run.feed(Observation.of("block1.relu_input", 3, data=batch)).message)
    block1.relu_input: 66.7% of 3 nodes dead (> 50%)
    >>> run.feed(Observation.of("block2.relu_input", 3, data=np.abs(batch) + 1)) is None
    True
    """

    rule_type = "DeadRelu"
    params = {
        "tensor_regex": Param(patterns, (".*relu_input", ".*relu_output"),
                              "regexes (re.search) of ReLU input or output names"),
        "collection_names": Param(names, (), "collections of ReLU inputs or outputs"),
        "threshold_inactivity": Param(_PERCENT, 1.0, "percent activity below which a node is dead"),
        "threshold_layer": Param(_PERCENT, 50.0, "percent of dead nodes above which it fires"),
    }

    tensor_regex: tuple[str, ...]
    collection_names: tuple[str, ...]
    threshold_inactivity: float
    threshold_layer: float

    def __init__(self, name: str | None = None, **values: Any) -> None:
        super().__init__(name, **values)
        self.selection = TensorSelection(self.collection_names, self.tensor_regex)

    def observe(self, state: None, obs: Observation) -> Finding | None:
        values = elements(self, obs)
        if values is None:
            return None
        # Explicit dimensions: reshape(0, -1) cannot infer the nodes of an empty batch.
        samples = values.shape[0] if values.ndim else 1
        width = math.prod(values.shape[1:])  # > 0: elements() skipped every zero-size tensor
        nodes = as_float64(values).reshape(samples, width)
        active = np.count_nonzero(nodes > 0, axis=0)  # NaN is never active
        present = samples - np.count_nonzero(np.isnan(nodes), axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            activity = 100.0 * active / present
        dead = int(np.count_nonzero((present > 0) & (activity < self.threshold_inactivity)))
        percent = 100.0 * dead / width
        if not percent > self.threshold_layer:
            return None
        return tensor_finding(
            obs, f"{obs.name}: {percent:.1f}% of {width} nodes dead (> {self.threshold_layer:g}%)",
            {"dead_percent": percent, "dead_nodes": dead, "nodes": width},
            threshold_inactivity=self.threshold_inactivity, threshold_layer=self.threshold_layer)
