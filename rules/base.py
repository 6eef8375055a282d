"""What every rule shares: the value a rule sees, the finding it returns, its parameters, its state.

A rule is a small stateful operator, written per key: the engine owns every rule's state, keyed by
(trial, rule, :meth:`Rule.state_key`), and hands the state of the key in with each value.
:meth:`Rule.new_state` makes the state of a key seen for the first time; :meth:`Rule.observe` takes
that state and one in-order value of one series, updates the state in place and may return a
:class:`Finding`. Rules never see Kafka, wall clocks or out-of-order steps, and never hold state of
their own between calls: the engine routes, orders and de-duplicates before a rule is asked, and
forgets, sizes, snapshots and restores the states (docs/rules.md, "Writing a rule").

A series is (trial, worker, view, tensor). A :class:`View` says which written modes feed it and how
its steps are numbered; the mode an alert names is the view's ``mode``.

>>> ALL.mode, ALL.global_numbering
('GLOBAL', True)
>>> [v.key for v in mode_views(None)["TRAIN"]], mode_views(None)["PREDICT"]
(['TRAIN'], ())
>>> [v.key for v in mode_views("GLOBAL")["EVAL"]]
['ALL']
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

import numpy as np

from .params import optional, parse_bool, severity
from .selection import TensorSelection

MODES = ("TRAIN", "EVAL", "PREDICT", "GLOBAL")

StateT = TypeVar("StateT")


class ConfigError(ValueError):
    """A rule or metric definition that cannot be loaded; the message names it and the parameter."""

    def __init__(self, owner: str, parameter: str | None, problem: str) -> None:
        where = f"{owner}: parameter {parameter!r}" if parameter else owner
        super().__init__(f"{where}: {problem}")
        self.owner = owner
        self.parameter = parameter
        self.problem = problem


class ParamProblem(ValueError):
    """Raised by :meth:`Rule.finish_params` for a problem involving one parameter."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(problem)
        self.parameter = parameter
        self.problem = problem


class View(NamedTuple):
    """How a rule looks at events: which series they form and which mode its alerts name."""

    key: str                 # identifies the series family inside a (trial, worker)
    mode: str                # the evaluated mode, as alerts name it
    global_numbering: bool   # steps are global steps (True) or steps within the written mode


TRAIN = View("TRAIN", "TRAIN", False)
EVAL = View("EVAL", "EVAL", False)
PREDICT = View("PREDICT", "PREDICT", False)
GLOBAL = View("GLOBAL", "GLOBAL", False)  # events written with mode GLOBAL (their step is global)
ALL = View("ALL", "GLOBAL", True)         # every event of the worker, numbered by global step

_BY_MODE = {"TRAIN": TRAIN, "EVAL": EVAL, "PREDICT": PREDICT}


def mode_views(mode: str | None) -> dict[str, tuple[View, ...]]:
    """Written mode -> the views it feeds, for a rule's ``mode`` parameter (docs/rules.md, mode choice).

    Absent: EVAL and TRAIN independently, GLOBAL-written events as their own series, PREDICT never.
    ``GLOBAL``: every event, numbered by global step. Any other mode: that mode only.
    """
    if mode is None:
        return {"TRAIN": (TRAIN,), "EVAL": (EVAL,), "PREDICT": (), "GLOBAL": (GLOBAL,)}
    if mode == "GLOBAL":
        return {written: (ALL,) for written in MODES}
    return {written: ((_BY_MODE[mode],) if written == mode else ()) for written in MODES}


# Weights and initialisation are training matters: EVAL and PREDICT events are ignored.
TRAINING_VIEWS: dict[str, tuple[View, ...]] = {
    "TRAIN": (TRAIN,), "EVAL": (), "PREDICT": (), "GLOBAL": (GLOBAL,)}


@dataclass(slots=True)
class Observation:
    """One value of one series at one step, as a rule sees it.

    ``mode`` is the evaluated mode and ``step`` the step in the view's numbering. ``series``
    identifies the series inside its trial: (worker, view key, name). ``value`` is the single element
    as a float when the value has exactly one element; ``data`` is the tensor as written (any
    protocol dtype, read-only, possibly 0-d), ``None`` for a scalar or a tensor sent with only
    ``reductions``.
    """

    trial: str
    worker: str
    mode: str
    name: str
    step: int
    collections: tuple[str, ...]
    ts: float
    series: tuple[str, str, str]
    value: float | None = None
    data: np.ndarray | None = None
    reductions: Mapping[str, float] | None = None

    @classmethod
    def of(cls, name: str, step: int, value: float | None = None, data: Any = None, *,
           trial: str = "trial", worker: str = "0", mode: str = "TRAIN",
           collections: tuple[str, ...] = (), ts: float = 0.0) -> Observation:
        """An observation built by hand (examples and tests); ``data`` may be any array-like."""
        array = None if data is None else np.asarray(data)
        if value is None and array is not None and array.size == 1:
            value = float(array.reshape(-1)[0])
        return cls(trial, worker, mode, name, step, tuple(collections), ts, (worker, mode, name),
                   value, array)

    def array(self) -> np.ndarray | None:
        """The values as an array: ``data``, or the scalar's value as a 0-d float64 array."""
        if self.data is not None:
            return self.data
        if self.value is not None:
            return np.array(self.value, dtype=np.float64)
        return None


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
    """A rule parameter: its parser (native or SageMaker string value) and its default.

    ``parse`` raises ``ValueError`` with the problem; the caller names the rule and parameter.
    Parsers accept their own output, so resolving resolved parameters changes nothing.
    """

    parse: Callable[[Any], Any]
    default: Any = None
    doc: str = ""


# Parameters every rule accepts on top of its own.
SHARED_PARAMS: Mapping[str, Param] = {
    "stop_at_first": Param(parse_bool, False, "stop the rule for a trial after its first alert"),
    "severity": Param(optional(severity), None,
                      "info, warning or error, carried on its alerts; none: the rule type's default"),
}


class Rule(ABC, Generic[StateT]):
    """Base of every rule, built-in or written by a user.

    Subclasses set ``rule_type`` and ``params`` and implement :meth:`observe`, and
    :meth:`new_state` when they keep state; :meth:`state_key` says which values share one state
    (by default one series). In ``__init__`` they set ``self.views_by_mode`` (written mode ->
    views) unless the default mode choice applies, and ``self.selection`` when they select by
    collections and regexes (the default :meth:`selects`); a rule that selects otherwise
    overrides :meth:`selects`. ``skipped`` counts inputs a rule selected but could not use, by reason.

    ``rule_type`` names the rule in alerts; a configuration that names a rule by import path or
    entry point sets it on the instance to that name. ``default_severity`` is the severity of its
    alerts when the configuration sets none. ``state_spans_series`` declares a :meth:`state_key`
    that groups several series of a worker (a loss's TRAIN and EVAL values, the tensors of one
    step): in a resumed run (a new writer session) the engine restarts such a state on the first
    value of the new session it receives, where a state of one series restarts with its series.

    A state is plain data: builtin containers, numbers, strings, numpy arrays of numbers,
    ``collections.deque`` and instances of classes defined in the rule's own module (``__slots__``
    keep them small). The engine sizes it by walking it and snapshots it by rebuilding exactly those
    types, so a state must not hold functions, files, locks or objects of other modules.
    """

    rule_type: str  # a class attribute; the instance's when configured by path or entry point
    params: ClassVar[Mapping[str, Param]] = {}
    default_severity: ClassVar[str] = "warning"
    state_spans_series: ClassVar[bool] = False
    selection: TensorSelection | None = None  # set by rules that select by collections and regexes

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "rule_type" not in vars(cls):  # a rule that names none is named after its class
            cls.rule_type = cls.__name__

    def __init__(self, name: str | None = None, **values: Any) -> None:
        self.name = name or self.rule_type
        resolved = self.resolve_params(self.name, values)
        for key, value in resolved.items():
            setattr(self, key, value)
        self.stop_at_first: bool = resolved["stop_at_first"]
        self.severity: str = resolved["severity"]
        self.views_by_mode: dict[str, tuple[View, ...]] = mode_views(None)
        self.skipped: dict[str, int] = {}

    @classmethod
    def resolve_params(cls, name: str, given: Mapping[str, Any], *,
                       rule_type: str | None = None) -> dict[str, Any]:
        """Every parameter's value: the given ones parsed, the others at their default.

        Raises :class:`ConfigError` naming the rule (``rule_type``: as the configuration names
        its type, by default ``cls.rule_type``) and the parameter.
        """
        owner = f"rule {name!r} ({rule_type or cls.rule_type})"
        known = {**SHARED_PARAMS, **cls.params}
        for key in given:
            if key not in known:
                raise ConfigError(owner, key, "unknown parameter; known: " + ", ".join(sorted(known)))
        resolved: dict[str, Any] = {}
        for key, param in known.items():
            if key not in given:
                resolved[key] = param.default
                continue
            try:
                resolved[key] = param.parse(given[key])
            except (ValueError, TypeError) as exc:
                raise ConfigError(owner, key, f"{exc} (got {given[key]!r})") from None
        if resolved["severity"] is None:
            resolved["severity"] = cls.default_severity
        try:
            return cls.finish_params(resolved)
        except ParamProblem as exc:
            raise ConfigError(owner, exc.parameter, exc.problem) from None

    @classmethod
    def finish_params(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Combine or cross-check parsed parameters; raise :class:`ParamProblem` on a bad mix."""
        return values

    def views(self, written_mode: str) -> tuple[View, ...]:
        """The views an event written in ``written_mode`` feeds for this rule (empty: ignored)."""
        return self.views_by_mode[written_mode]

    def skip(self, reason: str) -> None:
        """Count an input that was selected but cannot be used."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def selection_hint(self) -> str:
        """What the rule reads, for the notice that it selected nothing in a trial."""
        selection = self.selection
        if selection is None:
            return "check its parameters"
        wanted = [f"collections {', '.join(selection.collections)}"] if selection.collections else []
        wanted += [f"names matching {', '.join(selection.patterns)}"] if selection.patterns else []
        return ("it reads " + " or ".join(wanted or ["every one-element series"])
                + "; set collection_names or tensor_regex to what the run writes")

    def selects(self, name: str, collections: tuple[str, ...]) -> bool:
        """Whether the tensor ``name``, listed in ``collections``, is an input of this rule.

        By default: it matches ``self.selection`` (the union of collections and regexes); a rule
        that selects otherwise overrides this.
        """
        return self.selection is not None and self.selection.matches(name, collections)

    def state_key(self, obs: Observation) -> Hashable:
        """Which values share one state inside a trial; by default one series (worker, view, name).

        A rule comparing the tensors of one step across layers keys by ``obs.series[:2]``
        (worker, view); the key must be a hashable of str, int and tuples (snapshots keep it).
        """
        return obs.series

    def new_state(self) -> StateT | None:
        """The state of a key seen for the first time; :meth:`observe` updates it in place.

        ``None`` (the default): the rule keeps no state, each evaluation uses one value only.
        """
        return None

    @abstractmethod
    def observe(self, state: StateT, obs: Observation) -> Finding | None:
        """Take the next in-order value of a selected series; return a finding when the rule fires."""
