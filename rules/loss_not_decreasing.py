"""LossNotDecreasing: the loss did not decrease enough over ``num_steps`` steps."""

from __future__ import annotations

from typing import Any

from .base import Finding, Observation, Param, Rule, mode_views
from .params import integer, mode, names, number, parse_bool, patterns
from .selection import TensorSelection


class _LossWindow:
    """The saved steps of one loss series that can still be a reference, and the last evaluation.

    Only the newest step ``<= s - num_steps`` and the steps after it can serve a future step, so at
    most ``num_steps + 1`` entries are kept (in a list: for a few entries a deque takes ten times
    the memory).
    """

    __slots__ = ("saved", "last_evaluated")

    def __init__(self) -> None:
        self.saved: list[tuple[int, float, float]] = []  # (step, value, ts), oldest first
        self.last_evaluated: int | None = None


class LossNotDecreasing(Rule[_LossWindow]):
    """Fires when a loss did not decrease by ``diff_percent`` over ``num_steps`` steps.

    docs/rules.md, "LossNotDecreasing". For the current saved step ``s`` of a loss series, the reference
    ``p`` is the newest saved step with ``p <= s - num_steps`` (none: no evaluation). The first
    evaluation is at the first saved step that has a reference, each next one at the first saved
    step ``>= last evaluated step + num_steps``. It fires iff::

        cur >= prev + |prev| * diff_percent / 100     (diff_percent 0: exactly cur >= prev)

    compared in float64. A NaN loss is an evaluation that does not fire (it counts for the cadence).
    Only one-element values count (a scalar, or a tensor of one element); others are skipped.

    Inputs: the ``losses`` collection when ``use_losses_collection`` is true, united with
    ``collection_names`` and ``tensor_regex``; with none of the three, every one-element series.
    Each selected loss is its own series. Mode: absent, EVAL and TRAIN (and GLOBAL-written events)
    are evaluated independently; given, only that mode (GLOBAL: every event by global step).

    Where this rule departs from SageMaker's documentation:

    * the comparison above fires only when the loss rose by ``diff_percent`` percent or more; the
      documentation describes ``diff_percent`` as the minimum decrease required;
    * without ``losses`` and with no selection, SageMaker fell back to every tensor of a finished
      run; here the ``losses`` collection is never replaced by "everything" (a stream cannot know a
      run has no losses yet);
    * with ``mode`` absent, EVAL and TRAIN are both evaluated (SageMaker picked the first present);
    * ``diff_percent`` 0 is allowed (the documentation says ``0.0 < float < 100``).

    Examples
    --------
    The docs/rules.md test vector: losses saved every 4 steps, defaults.

    >>> from trainsentry.rules.rule_run import RuleRun
    >>> run = RuleRun(LossNotDecreasing())
    >>> for step, loss in zip(range(0, 20, 4), [0.3, 0.33, 0.31, 0.30, 0.28]):
    ...     found = run.feed(Observation.of("loss", step, loss, collections=("losses",)))
    ...     if found:
    ...         print(found.step, found.message)
    12 loss did not decrease over 12 steps: 0.3 at step 12, 0.3 at step 0 (fires at >= 0.3)

    With ``diff_percent = 20`` the first alert is at step 24 (0.42 against 0.30 at step 12).

    >>> run = RuleRun(LossNotDecreasing(diff_percent="20"))
    >>> values = [0.3, 0.33, 0.31, 0.30, 0.28, 0.2, 0.42]
    >>> [f.step for f in run.feed_all(Observation.of("loss", s, v, collections=("losses",))
    ...                               for s, v in zip(range(0, 28, 4), values))]
    [24]
    """

    rule_type = "LossNotDecreasing"
    params = {
        "collection_names": Param(names, (), "collections whose tensors are losses"),
        "tensor_regex": Param(patterns, (), "regexes (re.search) of loss tensor names"),
        "use_losses_collection": Param(parse_bool, True, "also select the 'losses' collection"),
        "num_steps": Param(integer(minimum=1), 10, "steps between the compared losses"),
        "diff_percent": Param(number(at_least=0, below=100), 0.0, "percent rise that fires"),
        "mode": Param(mode, None, "TRAIN, EVAL, PREDICT or GLOBAL; absent: EVAL and TRAIN"),
    }

    collection_names: tuple[str, ...]
    tensor_regex: tuple[str, ...]
    use_losses_collection: bool
    num_steps: int
    diff_percent: float
    mode: str | None

    def __init__(self, name: str | None = None, **values: Any) -> None:
        super().__init__(name, **values)
        self.views_by_mode = mode_views(self.mode)
        losses = ("losses",) if self.use_losses_collection else ()
        self.selection = TensorSelection(self.collection_names + losses, self.tensor_regex)

    def selects(self, name: str, collections: tuple[str, ...]) -> bool:
        return self.selection.empty or self.selection.matches(name, collections)

    def new_state(self) -> _LossWindow:
        return _LossWindow()

    def observe(self, window: _LossWindow, obs: Observation) -> Finding | None:
        cur = obs.value
        if cur is None:
            self.skip("not one element" if obs.data is not None else "no data")
            return None
        step, saved = obs.step, window.saved
        newest_reference = step - self.num_steps
        while len(saved) > 1 and saved[1][0] <= newest_reference:
            del saved[0]  # a few entries: cheaper than a deque, in time and in memory
        reference = saved[0] if saved and saved[0][0] <= newest_reference else None
        saved.append((step, cur, obs.ts))
        if reference is None:
            return None
        last = window.last_evaluated
        if last is not None and newest_reference < last:  # step < last + num_steps
            return None
        window.last_evaluated = step
        ref_step, prev, ref_ts = reference
        limit = prev + abs(prev) * self.diff_percent / 100.0 if self.diff_percent else prev
        if not cur >= limit:  # NaN on either side: no fire
            return None
        return Finding(
            obs.trial, obs.worker, obs.mode, step, (obs.name,),
            f"{obs.name} did not decrease over {step - ref_step} steps: {cur:.6g} at step {step}, "
            f"{prev:.6g} at step {ref_step} (fires at >= {limit:.6g})",
            {"tensor": obs.name, "value": cur, "reference_step": ref_step,
             "reference_value": prev, "threshold": limit, "num_steps": self.num_steps,
             "diff_percent": self.diff_percent},
            max(obs.ts, ref_ts))
