"""Configuration: the rules to run, the metric definitions and the objective, from TOML or JSON.

Two formats, one meaning. Native TOML::

    max_metric_definitions = 20          # optional, at most 40
    metric_time_budget_ms = 100          # optional: per definition and log line

    [[rules]]
    type = "LossNotDecreasing"           # a built-in rule, "module:Class" or an entry-point name
    name = "loss-stalled"                # optional, defaults to the type
    severity = "warning"                 # optional: info, warning or error
    num_steps = 10                       # any parameter of the rule, native or as a string

    [[metrics]]
    name = "loss"
    regex = "Loss = (.*?);"

    [objective]
    metric = "loss"
    type = "Minimize"

and SageMaker's JSON (:mod:`.sagemaker_json`): ``DebugRuleConfigurations`` (or a bare list of
rule configurations), ``MetricDefinitions`` and ``HyperParameterTuningJobObjective``. Every problem
is a :class:`ConfigError` whose one-line message names the rule or definition and the parameter.
A configuration that yields no rule and no metric definition is an error: it could never say
anything. :meth:`Config.describe` gives the lines the sidecar logs at start-up, what was loaded,
and :attr:`Config.ignored` what the file held that trainsentry does not use.

>>> toml = '[[rules]]\\ntype = "LossNotDecreasing"\\nnum_steps = 5\\n'
>>> sagemaker = ('{"DebugRuleConfigurations": [{"RuleConfigurationName": "LossNotDecreasing",'
...              ' "RuleParameters": {"rule_to_invoke": "LossNotDecreasing", "num_steps": "5"}}]}')
>>> parse_config(toml) == parse_config(sagemaker)
True
>>> parse_config('[[rules]]\\ntype = "LossNotDecreasing"\\nmin_difference = 1\\n')
Traceback (most recent call last):
...
trainsentry.rules.base.ConfigError: rule 'LossNotDecreasing' (LossNotDecreasing): parameter 'min_difference': unknown parameter; known: ...
>>> parse_config('[[rules]]\\ntype = "LossNotDecreasng"\\n')
Traceback (most recent call last):
...
trainsentry.rules.base.ConfigError: rule 'LossNotDecreasng': unknown rule type 'LossNotDecreasng'; did you mean 'LossNotDecreasing'? ...
>>> print(parse_config(toml).describe()[0])
rule 'LossNotDecreasing' (LossNotDecreasing, severity warning): collection_names=[], tensor_regex=[], use_losses_collection=true, num_steps=5, diff_percent=0.0, mode=none, stop_at_first=false
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .base import SHARED_PARAMS, ConfigError, Rule
from .metrics import (
    DEFAULT_MAX_DEFINITIONS,
    DEFAULT_TIME_BUDGET,
    MAX_DEFINITIONS_CAP,
    MetricDefinition,
    check_definitions,
)
from .objective import Objective
from .registry import RULES, build_rule, rule_class

_TOP_LEVEL = ("rules", "metrics", "objective", "max_metric_definitions", "metric_time_budget_ms")
# Tables of the same file that other commands read (``trainsentry notify``): the rules skip them.
_OTHER_TABLES = ("notify",)


@dataclass(frozen=True)
class RuleConfig:
    """One configured rule: its name (named in alerts), its built-in type, every parameter resolved."""

    name: str
    rule_type: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, rule_type: str, name: str | None = None, /, **given: Any) -> RuleConfig:
        """Resolve ``given`` (native values or SageMaker strings) against the rule's parameters.

        ``rule_type`` and ``name`` are positional-only, so a parameter called ``name`` or
        ``rule_type`` is a parameter like any other (unknown: a :class:`ConfigError`).
        """
        return cls.from_params(rule_type, name, given)

    @classmethod
    def from_params(cls, rule_type: str, name: str | None,
                    given: Mapping[str, Any]) -> RuleConfig:
        """Like :meth:`of` with the parameters as a mapping (whatever their keys).

        A rule written by a user is also built once, so that what its own ``__init__`` checks
        fails here, at load time, naming the rule.
        """
        name = name or rule_type
        rule = rule_class(rule_type, name)
        try:
            resolved = rule.resolve_params(name, given, rule_type=rule_type)
            if RULES.get(rule_type) is not rule:
                rule(name, **resolved).new_state()  # what the engine calls as it starts
        except ConfigError:
            raise
        except Exception as exc:  # a user's parser or constructor: one line, not a traceback
            raise ConfigError(f"rule {name!r} ({rule_type})", None,
                              f"cannot be loaded: {type(exc).__name__}: {exc}") from None
        return cls(name, rule_type, resolved)

    def build(self) -> Rule:
        return build_rule(self.rule_type, self.name, self.params)

    def describe(self) -> str:
        """One line: the rule, its type, its severity and every parameter's value."""
        own = [key for key in self.params if key not in SHARED_PARAMS]
        shown = ", ".join(f"{key}={_shown(self.params[key])}" for key in own + ["stop_at_first"]
                          if key in self.params)
        return (f"rule {self.name!r} ({self.rule_type}, severity {self.params.get('severity')}): "
                f"{shown or 'no parameters'}")


@dataclass(frozen=True)
class Config:
    """Everything the engine runs: rules, metric definitions, the objective and two settings."""

    rules: tuple[RuleConfig, ...] = ()
    metrics: tuple[MetricDefinition, ...] = ()
    objective: Objective | None = None
    max_metric_definitions: int = DEFAULT_MAX_DEFINITIONS
    metric_time_budget_ms: float = DEFAULT_TIME_BUDGET * 1000
    # What the file held that trainsentry does not use (SageMaker keys): said once at start-up.
    ignored: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        limit = self.max_metric_definitions
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_DEFINITIONS_CAP:
            raise ConfigError("config", "max_metric_definitions",
                              f"must be a whole number from 0 to {MAX_DEFINITIONS_CAP}, got {limit!r}")
        budget = self.metric_time_budget_ms
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not budget > 0:
            raise ConfigError("config", "metric_time_budget_ms", f"must be > 0, got {budget!r}")
        object.__setattr__(self, "metric_time_budget_ms", float(budget))
        seen: set[str] = set()
        for rule in self.rules:
            if rule.name in seen:
                raise ConfigError(f"rule {rule.name!r}", "name",
                                  "two rules have this name; alerts tell rules apart by name")
            seen.add(rule.name)
        check_definitions(self.metrics, limit)
        if self.objective and self.objective.metric not in {m.name for m in self.metrics}:
            raise ConfigError(f"objective {self.objective.metric!r}", "MetricName",
                              "is not the name of a metric definition")

    @classmethod
    def default(cls) -> Config:
        """Every built-in rule that loads with its default parameters.

        UnchangedTensor, AllZero and TensorVariance are left out: they require a selection (and
        TensorVariance a threshold), so they have no configuration of defaults only.
        """
        rules = []
        for rule_type in RULES:
            try:
                rules.append(RuleConfig.of(rule_type))
            except ConfigError:
                continue
        return cls(rules=tuple(rules))

    def describe(self) -> list[str]:
        """What was loaded, one line each: rules, metric definitions, the objective.

        (What the file held but trainsentry does not use is :attr:`ignored`.)
        """
        lines = [rule.describe() for rule in self.rules]
        lines += [f"metric definition {m.name!r}: regex {m.regex!r}" for m in self.metrics]
        if self.objective is not None:
            lines.append(f"objective: {self.objective.type} {self.objective.metric!r}")
        return lines


def load_config(path: str | Path) -> Config:
    """Read a configuration file; the format comes from its extension (.toml, .json) or content."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {str(path)!r}", None, f"cannot be read: {exc}") from None
    suffix = path.suffix.lower()
    return parse_config(text, suffix[1:] if suffix in (".toml", ".json") else None)


def parse_config(text: str, format: str | None = None) -> Config:
    """Parse a configuration given as text; ``format`` is ``"toml"``, ``"json"`` or guessed.

    The guess is JSON for text that starts with ``{``, or with ``[`` and parses as JSON (a bare
    list of rule configurations); else TOML.
    """
    if format is None:
        format = "json" if _looks_like_json(text) else "toml"
    if format == "json":
        from .sagemaker_json import from_sagemaker  # builds on this module's types
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("config", None, f"not valid JSON: {exc}") from None
        config = from_sagemaker(document)
        where = "DebugRuleConfigurations or MetricDefinitions"
    elif format == "toml":
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", None, f"not valid TOML: {exc}") from None
        config = _from_toml(document)
        where = "[[rules]] or [[metrics]]"
    else:
        raise ConfigError("config", None, f"unknown format {format!r}; expected toml or json")
    if not config.rules and not config.metrics:
        ignored = f" (ignored: {', '.join(config.ignored)})" if config.ignored else ""
        raise ConfigError("config", None, f"yields no rule and no metric definition, so it could "
                          f"never alert: give {where}{ignored}")
    return config


def _looks_like_json(text: str) -> bool:
    start = text.lstrip()[:1]
    if start == "{":
        return True
    if start != "[":
        return False
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


# --- TOML -----------------------------------------------------------------------------------

def _from_toml(document: dict[str, Any]) -> Config:
    for key in document:
        if key not in _TOP_LEVEL and key not in _OTHER_TABLES:
            raise ConfigError("config", key, "unknown setting; known: " + ", ".join(_TOP_LEVEL + _OTHER_TABLES))
    rules = tuple(_toml_rule(entry, i) for i, entry in enumerate(_tables(document, "rules")))
    metrics = tuple(metric_definition(entry, i, "name", "regex") for i, entry in
                    enumerate(_tables(document, "metrics")))
    objective = None
    if "objective" in document:
        table = document["objective"]
        if not isinstance(table, dict) or set(table) - {"metric", "type"} or "metric" not in table:
            raise ConfigError("objective", None, "expected a table with 'metric' and 'type'")
        objective = Objective(string_of(table["metric"], "objective", "metric"),
                              table.get("type", "Minimize"))
    return Config(rules, metrics, objective, **settings_of(document))


def _tables(document: dict[str, Any], key: str) -> list[dict[str, Any]]:
    entries = document.get(key, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError("config", key, f"expected an array of tables ([[{key}]])")
    return entries


def _toml_rule(entry: dict[str, Any], index: int) -> RuleConfig:
    given = dict(entry)
    rule_type = given.pop("type", None)
    if rule_type is None:
        raise ConfigError(f"rule #{index + 1}", "type", "missing: name a built-in rule, "
                          "e.g. type = \"LossNotDecreasing\", or a rule of your own")
    name = given.pop("name", None)
    rule_type = string_of(rule_type, f"rule #{index + 1}", "type")
    name = rule_type if name is None else string_of(name, f"rule #{index + 1}", "name")
    return RuleConfig.from_params(rule_type, name, given)


# --- shared -----------------------------------------------------------------------------------

def metric_definition(entry: Any, index: int, name_key: str, regex_key: str) -> MetricDefinition:
    """The metric definition ``entry`` (the ``index``-th) with its name and regex under those keys."""
    owner = f"metric definition #{index + 1}"
    if not isinstance(entry, dict):
        raise ConfigError(owner, None, f"expected an object with {name_key} and {regex_key}")
    if isinstance(entry.get(name_key), str):
        owner = f"metric definition {entry[name_key]!r}"
    for key in entry:
        if key not in (name_key, regex_key):
            raise ConfigError(owner, key, f"unknown field; expected {name_key} and {regex_key}")
    for key in (name_key, regex_key):
        if key not in entry:
            raise ConfigError(owner, key, "missing")
    return MetricDefinition(entry[name_key], entry[regex_key])


def settings_of(document: dict[str, Any]) -> dict[str, Any]:
    """The two settings a document may give at its top level."""
    return {key: document[key] for key in ("max_metric_definitions", "metric_time_budget_ms")
            if key in document}


def string_of(value: Any, owner: str, key: str) -> str:
    """``value`` if it is a non-empty string, else a :class:`ConfigError` naming ``owner`` and ``key``."""
    if not isinstance(value, str) or not value:
        raise ConfigError(owner, key, f"expected a non-empty string, got {value!r}")
    return value


def _shown(value: Any) -> str:
    """A parameter's value as the start-up log shows it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple) and all(isinstance(item, str) for item in value):
        return "[" + ", ".join(value) + "]"
    return str(value)
