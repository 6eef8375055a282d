"""Rules about time passing: they see when each worker was last heard of, and the source's clock.

Most rules judge values; a clocked rule judges silence. It takes no series: the engine keeps one
state per (trial, worker) for it (made by :meth:`Rule.new_state`), tells it of every ``tensor``,
``scalar`` and ``log`` event of that worker (:meth:`ClockedRule.heard`), asks it when it next
wants to see the clock (:meth:`ClockedRule.due`) and, once the clock is past that time, shows it
the clock (:meth:`ClockedRule.on_clock`). The clock is the engine's, set by its source (docs/rules.md,
"StalledTrainingRule"): a rule never reads a clock of its own.

The engine keeps the due times in a heap, so a clock that moves costs nothing for the workers
that are not due. A due time is asked again after every event heard and after every
:meth:`~ClockedRule.on_clock`; one that is not after the clock is ignored until the worker is heard
of again.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TypeVar

from .base import Finding, Observation, Rule

StateT = TypeVar("StateT")


class ClockedRule(Rule[StateT]):
    """Base of the rules that judge time: fed with a worker's activity and the clock, not series."""

    def selects(self, name: str, collections: tuple[str, ...]) -> bool:
        return False  # fed through heard(), never through series

    def selection_hint(self) -> str:
        return "it reads when each worker was last heard of"

    def observe(self, state: StateT, obs: Observation) -> Finding | None:
        return None

    @abstractmethod
    def new_state(self) -> StateT:
        """The state of a worker heard of for the first time."""

    @abstractmethod
    def heard(self, state: StateT, at: float, step: int | None, ts: float, session: str | None,
              final: bool) -> None:
        """An event of the worker: at clock time ``at``, global ``step`` (``None`` for a log line),
        written at ``ts``, by writer ``session``; ``final`` for the worker's end marker."""

    @abstractmethod
    def due(self, state: StateT) -> float | None:
        """The clock time after which :meth:`on_clock` is to be called; ``None``: not while
        nothing new is heard."""

    @abstractmethod
    def on_clock(self, state: StateT, trial: str, worker: str, now: float) -> Finding | None:
        """The clock has passed :meth:`due`; a finding if the rule fires."""

    def horizon(self) -> float | None:
        """The longest silence the rule waits for, in seconds (whoever releases the state of quiet
        trials must wait longer); ``None``: no bound."""
        return None

    def session_of(self, state: StateT) -> str | None:
        """The writer session a finding about this worker belongs to (its alert id includes it)."""
        return None
