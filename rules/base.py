"""What every rule shares: the value a rule sees, the finding it returns, its parameters.

A rule is a small stateful operator in the style of bytewax: :meth:`Rule.observe` handles one
in-order value of one series and may return a :class:`Finding`; :meth:`Rule.forget` drops a trial's
state; :meth:`Rule.state_bytes` sizes what it holds. Rules never see Kafka, wall clocks or
out-of-order steps: the engine routes, orders and de-duplicates before a rule is asked.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

# Evaluated modes. A series numbered by global step across every mode is evaluated as GLOBAL.
TRAIN, EVAL, PREDICT, GLOBAL = "TRAIN", "EVAL", "PREDICT", "GLOBAL"


class ConfigError(ValueError):
    """A rule or metric definition that cannot be loaded; the message names it and the parameter."""

    def __init__(self, owner: str, parameter: str | None, problem: str) -> None:
        where = f"{owner}: parameter {parameter!r}" if parameter else owner
        super().__init__(f"{where}: {problem}")
        self.owner = owner
        self.parameter = parameter
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Observation:
    """One value of one series at one step, as a rule sees it.

    ``mode`` is the evaluated mode and ``step`` the step in that mode's numbering (the global step
    when the series is numbered by global step). ``data`` is the tensor as written (any protocol
    dtype, read-only, possibly 0-d); ``None`` when the writer sent only ``reductions``.
    """

    trial: str
    worker: str
    mode: str
    name: str
    step: int
    collections: frozenset[str]
    ts: float
    data: np.ndarray | None = None
    reductions: Mapping[str, float] | None = None


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's "yes" for (trial, worker, mode, step): the engine turns it into an alert."""

    trial: str
    worker: str
    mode: str
    step: int
    tensors: tuple[str, ...]
    message: str
    details: dict[str, Any]
    event_ts: float


@dataclass(frozen=True)
class Param:
    """A rule parameter: its parser (native or SageMaker string value) and its default."""

    parse: Callable[[Any], Any]
    default: Any = None
    doc: str = ""


@dataclass
class RuleStats:
    """Counters a rule keeps about inputs it could not use."""

    skipped_no_data: int = 0
    skipped_shape: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class Rule(ABC):
    """Base of the built-in rules.

    Subclasses set ``rule_type`` and ``params`` and implement :meth:`selects`, :meth:`modes` and
    :meth:`observe`.
    """

    rule_type: ClassVar[str]
    params: ClassVar[Mapping[str, Param]]

    def __init__(self, name: str, **values: Any) -> None:
        self.name = name
        self.stats = RuleStats()
        for key, value in values.items():
            setattr(self, key, value)

    @abstractmethod
    def selects(self, name: str, collections: frozenset[str], size: int | None) -> bool:
        """Whether the tensor ``name`` (in ``collections``, with ``size`` elements if known) is an input."""

    @abstractmethod
    def modes(self, written_mode: str) -> tuple[tuple[str, bool], ...]:
        """The series an event written in ``written_mode`` belongs to for this rule.

        Each is (evaluated mode, numbered by global step). Empty: the rule ignores that mode.
        """

    @abstractmethod
    def observe(self, obs: Observation) -> Finding | None:
        """Take the next in-order value of a selected series; return a finding when the rule fires."""

    @abstractmethod
    def forget(self, trial: str) -> None:
        """Release everything held for ``trial``."""

    def state_bytes(self) -> int:
        """Approximate bytes of window state held (arrays dominate; bookkeeping is estimated)."""
        return 0
