"""UnchangedTensor: a tensor stayed the same over its ``num_steps`` newest saved steps."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from .base import Finding, Observation, Param, Rule
from .element_wise import as_float64, elements, required_selection, tensor_finding
from .params import integer, names, number, parse_bool, patterns
from .selection import TensorSelection

_HEAD = 4096  # elements compared before the rest (see UnchangedTensor._all_close)


class _RecentTensors:
    """The ``num_steps - 1`` newest saved tensors of one series before the current one."""

    __slots__ = ("saved",)

    def __init__(self, keep: int) -> None:
        # (step, tensor as written): a read-only view of its event's bytes, not a copy
        self.saved: deque[tuple[int, np.ndarray]] = deque(maxlen=keep)


class UnchangedTensor(Rule[_RecentTensors]):
    """Fires when a tensor is unchanged over its ``num_steps`` newest saved steps.

    docs/rules.md, "UnchangedTensor". At a saved step ``s`` of a series, take the ``num_steps``
    newest saved steps up to and including ``s`` (their step numbers need not be consecutive);
    fewer: no evaluation. With ``b`` the tensor at ``s``, it fires iff every earlier one ``a`` has
    ``b``'s shape and, in float64, element-wise::

        |a - b| <= atol + rtol * |b|       (numpy.allclose(a, b, rtol, atol, equal_nan))

    NaN is close to NaN only with ``equal_nan``; an infinity is close only to the same infinity.

    Inputs: ``collection_names`` and ``tensor_regex`` (their union; one is required). Modes: TRAIN,
    EVAL and GLOBAL-written series, each its own; PREDICT is not evaluated (no ``mode`` parameter).
    A zero-size tensor and a tensor sent with only ``reductions`` are skipped and counted and take
    no step in the series. State: the ``num_steps - 1`` newest tensors of each series, as written.
    Cost: a changing tensor is told by its first elements, and exactly equal tensors by a plain
    comparison; only tensors that change within the tolerances cost a full ``allclose`` per
    earlier step of the window (each about 1.5 times WeightUpdateRatio's cost per element).

    Decisions where the SageMaker documentation is silent: ``num_steps`` is at least 2 (one step
    cannot show that anything stayed the same); a tensor whose shape differs from the current one
    is "changed"; values of any dtype are compared in float64.

    Examples
    --------
    The docs/rules.md vector: one value ``0.5`` saved at steps 0, 1, 2, 3 fires at 2 and at 3.

    >>> from trainsentry.rules.rule_run import RuleRun
    >>> run = RuleRun(UnchangedTensor(tensor_regex="fc.bias"))
    >>> [f.step for f in run.feed_all(Observation.of("fc.bias", s, data=[0.5]) for s in range(4))]
    [2, 3]
    >>> print(run.feed(Observation.of("fc.bias", 4, data=[0.5])).message)
    fc.bias unchanged over 3 saved steps (2..4, rtol 1e-05, atol 1e-08)
    """

    rule_type = "UnchangedTensor"
    params = {
        "collection_names": Param(names, (), "collections to check (with tensor_regex: the union)"),
        "tensor_regex": Param(patterns, (), "regexes (re.search) of tensor names to check"),
        "num_steps": Param(integer(minimum=2), 3, "saved steps over which the tensor is unchanged"),
        "rtol": Param(number(at_least=0), 1e-5, "relative tolerance (numpy.allclose)"),
        "atol": Param(number(at_least=0), 1e-8, "absolute tolerance (numpy.allclose)"),
        "equal_nan": Param(parse_bool, False, "NaN counts as equal to NaN"),
    }

    collection_names: tuple[str, ...]
    tensor_regex: tuple[str, ...]
    num_steps: int
    rtol: float
    atol: float
    equal_nan: bool

    @classmethod
    def finish_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        return required_selection(values)

    def __init__(self, name: str | None = None, **values: Any) -> None:
        super().__init__(name, **values)
        self.selection = TensorSelection(self.collection_names, self.tensor_regex)

    def new_state(self) -> _RecentTensors:
        return _RecentTensors(self.num_steps - 1)

    def observe(self, recent: _RecentTensors, obs: Observation) -> Finding | None:
        current = elements(self, obs)
        if current is None:
            return None
        unchanged = len(recent.saved) == recent.saved.maxlen and self._all_close(recent, current)
        first = recent.saved[0][0] if recent.saved else obs.step
        recent.saved.append((obs.step, current))
        if not unchanged:
            return None
        return tensor_finding(
            obs, f"{obs.name} unchanged over {self.num_steps} saved steps ({first}..{obs.step}, "
            f"rtol {self.rtol:g}, atol {self.atol:g})",
            {"first_step": first, "elements": int(current.size)},
            num_steps=self.num_steps, rtol=self.rtol, atol=self.atol, equal_nan=self.equal_nan)

    def _all_close(self, recent: _RecentTensors, current: np.ndarray) -> bool:
        earlier = [tensor for _, tensor in reversed(recent.saved)]  # newest first
        if any(tensor.shape != current.shape for tensor in earlier):
            return False
        # A tensor that changes almost always shows it in its first elements: checking those of
        # every earlier tensor first makes a changing tensor cost _HEAD elements, not all of them.
        # Exactly equal values (a frozen layer) are close whatever the tolerances: that is checked
        # first, on the values as written, and is far cheaper than allclose.
        flat = current.reshape(-1)
        for part in (slice(0, _HEAD), slice(_HEAD, None)):
            b, b64 = flat[part], None
            for tensor in earlier:
                a = tensor.reshape(-1)[part]
                if a.dtype == b.dtype and np.array_equal(a, b):
                    continue
                if b64 is None:
                    b64 = as_float64(b)
                with np.errstate(all="ignore"):  # inf - inf and overflow: allclose handles them
                    if not np.allclose(as_float64(a), b64, self.rtol, self.atol, self.equal_nan):
                        return False
        return True
