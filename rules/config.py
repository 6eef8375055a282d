"""Configuration: the rules to run, the metric definitions and the objective, from TOML or JSON.

Two formats, one meaning. Native TOML::

    max_metric_definitions = 20          # optional, at most 40
    metric_time_budget_ms = 100          # optional: per definition and log line

    [[rules]]
    type = "LossNotDecreasing"           # the built-in rule
    name = "loss-stalled"                # optional, defaults to the type
    num_steps = 10                       # any parameter of the rule, native or as a string

    [[metrics]]
    name = "loss"
    regex = "Loss = (.*?);"

    [objective]
    metric = "loss"
    type = "Minimize"

and SageMaker's JSON: ``DebugRuleConfigurations`` (``RuleConfigurationName``, ``RuleParameters``
with ``rule_to_invoke``), ``MetricDefinitions`` (top level, under ``AlgorithmSpecification`` or under
``TrainingJobDefinition.AlgorithmSpecification``) and ``HyperParameterTuningJobObjective`` (top
level or under ``HyperParameterTuningJobConfig``). Other SageMaker fields are ignored; the two
settings above may be given at the top level of the JSON too. Every problem is a
:class:`ConfigError` whose one-line message names the rule or definition and the parameter.

>>> toml = '[[rules]]\\ntype = "LossNotDecreasing"\\nnum_steps = 5\\n'
>>> sagemaker = ('{"DebugRuleConfigurations": [{"RuleConfigurationName": "LossNotDecreasing",'
...              ' "RuleParameters": {"rule_to_invoke": "LossNotDecreasing", "num_steps": "5"}}]}')
>>> parse_config(toml) == parse_config(sagemaker)
True
>>> parse_config('[[rules]]\\ntype = "LossNotDecreasing"\\nmin_difference = 1\\n')
Traceback (most recent call last):
...
trainsentry.rules.base.ConfigError: rule 'LossNotDecreasing' (LossNotDecreasing): parameter 'min_difference': unknown parameter; known: ...
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .base import ConfigError, Rule
from .metrics import (DEFAULT_MAX_DEFINITIONS, DEFAULT_TIME_BUDGET, MAX_DEFINITIONS_CAP,
                      MetricDefinition, check_definitions)
from .objective import Objective
from .registry import RULES, build_rule, rule_class

_TOP_LEVEL = ("rules", "metrics", "objective", "max_metric_definitions", "metric_time_budget_ms")


@dataclass(frozen=True)
class RuleConfig:
    """One configured rule: its name (named in alerts), its built-in type, every parameter resolved."""

    name: str
    rule_type: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, rule_type: str, name: str | None = None, /, **given: Any) -> "RuleConfig":
        """Resolve ``given`` (native values or SageMaker strings) against the rule's parameters.

        ``rule_type`` and ``name`` are positional-only, so a parameter called ``name`` or
        ``rule_type`` is a parameter like any other (unknown: a :class:`ConfigError`).
        """
        return cls.from_params(rule_type, name, given)

    @classmethod
    def from_params(cls, rule_type: str, name: str | None,
                    given: Mapping[str, Any]) -> "RuleConfig":
        """Like :meth:`of` with the parameters as a mapping (whatever their keys)."""
        name = name or rule_type
        resolved = rule_class(rule_type, name).resolve_params(name, given)
        return cls(name, rule_type, resolved)

    def build(self) -> Rule:
        return build_rule(self.rule_type, self.name, self.params)


@dataclass(frozen=True)
class Config:
    """Everything the engine runs: rules, metric definitions, the objective and two settings."""

    rules: tuple[RuleConfig, ...] = ()
    metrics: tuple[MetricDefinition, ...] = ()
    objective: Objective | None = None
    max_metric_definitions: int = DEFAULT_MAX_DEFINITIONS
    metric_time_budget_ms: float = DEFAULT_TIME_BUDGET * 1000

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
    def default(cls) -> "Config":
        """Every built-in rule with its default parameters."""
        return cls(rules=tuple(RuleConfig.of(rule_type) for rule_type in RULES))


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
    """Parse a configuration given as text; ``format`` is ``"toml"``, ``"json"`` or guessed."""
    if format is None:
        format = "json" if text.lstrip().startswith("{") else "toml"
    if format == "json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError("config", None, f"not valid JSON: {exc}") from None
        return _from_sagemaker(document)
    if format == "toml":
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config", None, f"not valid TOML: {exc}") from None
        return _from_toml(document)
    raise ConfigError("config", None, f"unknown format {format!r}; expected toml or json")


# --- TOML -----------------------------------------------------------------------------------

def _from_toml(document: dict[str, Any]) -> Config:
    for key in document:
        if key not in _TOP_LEVEL:
            raise ConfigError("config", key, "unknown setting; known: " + ", ".join(_TOP_LEVEL))
    rules = tuple(_toml_rule(entry, i) for i, entry in enumerate(_tables(document, "rules")))
    metrics = tuple(_metric(entry, i, "name", "regex") for i, entry in
                    enumerate(_tables(document, "metrics")))
    objective = None
    if "objective" in document:
        table = document["objective"]
        if not isinstance(table, dict) or set(table) - {"metric", "type"} or "metric" not in table:
            raise ConfigError("objective", None, "expected a table with 'metric' and 'type'")
        objective = Objective(_string(table["metric"], "objective", "metric"),
                              table.get("type", "Minimize"))
    return Config(rules, metrics, objective, **_settings(document))


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
                          "e.g. type = \"LossNotDecreasing\"")
    name = given.pop("name", None)
    rule_type = _string(rule_type, f"rule #{index + 1}", "type")
    name = rule_type if name is None else _string(name, f"rule #{index + 1}", "name")
    return RuleConfig.from_params(rule_type, name, given)


# --- SageMaker JSON -------------------------------------------------------------------------

def _from_sagemaker(document: Any) -> Config:
    if not isinstance(document, dict):
        raise ConfigError("config", None, "expected a JSON object")
    rules_json = document.get("DebugRuleConfigurations", [])
    if not isinstance(rules_json, list):
        raise ConfigError("config", "DebugRuleConfigurations", "expected a list")
    rules = tuple(_sagemaker_rule(entry, i) for i, entry in enumerate(rules_json))
    metrics = tuple(_metric(entry, i, "Name", "Regex")
                    for i, entry in enumerate(_sagemaker_metrics(document)))
    objective = None
    spec = _first_present(document, "HyperParameterTuningJobObjective",
                          ("HyperParameterTuningJobObjective",),
                          ("HyperParameterTuningJobConfig", "HyperParameterTuningJobObjective"))
    if spec is not None:
        if not isinstance(spec, dict) or "MetricName" not in spec:
            raise ConfigError("objective", "MetricName",
                              "HyperParameterTuningJobObjective needs MetricName and Type")
        objective = Objective(_string(spec["MetricName"], "objective", "MetricName"),
                              spec.get("Type", "Minimize"))
    return Config(rules, metrics, objective, **_settings(document))


def _sagemaker_rule(entry: Any, index: int) -> RuleConfig:
    if not isinstance(entry, dict):
        raise ConfigError(f"rule #{index + 1}", None, "expected an object")
    name = entry.get("RuleConfigurationName")
    owner = f"rule {name!r}" if isinstance(name, str) else f"rule #{index + 1}"
    given = entry.get("RuleParameters")
    if not isinstance(given, dict) or "rule_to_invoke" not in given:
        raise ConfigError(owner, "rule_to_invoke",
                          "missing: RuleParameters must name the built-in rule")
    given = dict(given)
    rule_type = _string(given.pop("rule_to_invoke"), owner, "rule_to_invoke")
    name = rule_type if name is None else _string(name, owner, "RuleConfigurationName")
    return RuleConfig.from_params(rule_type, name, given)


def _sagemaker_metrics(document: dict[str, Any]) -> list[Any]:
    found = _first_present(document, "MetricDefinitions", ("MetricDefinitions",),
                           ("AlgorithmSpecification", "MetricDefinitions"),
                           ("TrainingJobDefinition", "AlgorithmSpecification", "MetricDefinitions"))
    if found is None:
        return []
    if not isinstance(found, list):
        raise ConfigError("config", "MetricDefinitions", "expected a list")
    return found


def _first_present(document: dict[str, Any], what: str, *paths: tuple[str, ...]) -> Any:
    """The value at the one path present; two places at once is ambiguous, hence an error."""
    found = []
    for path in paths:
        node: Any = document
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            found.append(node)
    if len(found) > 1:
        raise ConfigError("config", what, "given in more than one place")
    return found[0] if found else None


# --- shared -----------------------------------------------------------------------------------

def _metric(entry: Any, index: int, name_key: str, regex_key: str) -> MetricDefinition:
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


def _settings(document: dict[str, Any]) -> dict[str, Any]:
    return {key: document[key] for key in ("max_metric_definitions", "metric_time_budget_ms")
            if key in document}


def _string(value: Any, owner: str, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(owner, key, f"expected a non-empty string, got {value!r}")
    return value
