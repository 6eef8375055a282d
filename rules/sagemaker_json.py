"""SageMaker's JSON as a configuration: the rules, metric definitions and objective it holds.

What is read (docs/rules.md, "Configuration formats"):

- ``DebugRuleConfigurations``: a list of ``RuleConfigurationName`` (optional, defaults to the rule)
  and ``RuleParameters``, whose ``rule_to_invoke`` names the rule and whose other entries are its
  parameters, as strings. A bare JSON list is taken as this list.
- ``MetricDefinitions`` at the top level, under ``AlgorithmSpecification`` or under
  ``TrainingJobDefinition.AlgorithmSpecification``; ``HyperParameterTuningJobObjective`` at the top
  level or under ``HyperParameterTuningJobConfig``; one place each.
- ``max_metric_definitions`` and ``metric_time_budget_ms`` at the top level.

What the format allows but trainsentry does not use is accepted and listed in
:attr:`Config.ignored` (the sidecar says so once at start-up): any other key of the objects read
(``TrainingJobName``, ``RoleArn``, ``AlgorithmSpecification.TrainingImage``, ...), the fields of a
rule configuration that say where SageMaker ran it (``RuleEvaluatorImage``, ``InstanceType``,
``VolumeSizeInGB``, ``LocalPath``, ``S3OutputPath``) and ``base_trial`` among its parameters. A key
that is a near miss of one that is read (``DebugRuleConfiguration``) is an error, as are any other
field of a rule configuration and an unknown rule parameter.

>>> config = from_sagemaker([{"RuleConfigurationName": "nan", "InstanceType": "ml.t3.medium",
...     "RuleParameters": {"rule_to_invoke": "ExplodingTensor", "base_trial": "s3://x"}}])
>>> [(rule.name, rule.rule_type) for rule in config.rules], config.ignored
([('nan', 'ExplodingTensor')], ("InstanceType of rule 'nan'", "RuleParameters.base_trial of rule 'nan'"))
>>> from_sagemaker({"DebugRuleConfiguration": []})
Traceback (most recent call last):
...
trainsentry.rules.base.ConfigError: config: parameter 'DebugRuleConfiguration': unknown key; did you mean 'DebugRuleConfigurations'?
"""

from __future__ import annotations

import difflib
from typing import Any

from .base import ConfigError
from .config import Config, RuleConfig, metric_definition, settings_of, string_of
from .objective import Objective

RULES_KEY = "DebugRuleConfigurations"
# Keys read at each level; under the others, every key is ignored (and listed).
_READ = {
    (): (RULES_KEY, "MetricDefinitions", "AlgorithmSpecification", "TrainingJobDefinition",
         "HyperParameterTuningJobObjective", "HyperParameterTuningJobConfig",
         "max_metric_definitions", "metric_time_budget_ms"),
    ("AlgorithmSpecification",): ("MetricDefinitions",),
    ("TrainingJobDefinition",): ("AlgorithmSpecification",),
    ("TrainingJobDefinition", "AlgorithmSpecification"): ("MetricDefinitions",),
    ("HyperParameterTuningJobConfig",): ("HyperParameterTuningJobObjective",),
}
# Fields of a rule configuration about where SageMaker ran the rule: meaningless in a sidecar.
_RULE_PLACEMENT = ("LocalPath", "S3OutputPath", "RuleEvaluatorImage", "InstanceType", "VolumeSizeInGB")
_RULE_FIELDS = ("RuleConfigurationName", "RuleParameters")
_IGNORED_PARAMETERS = ("base_trial",)  # SageMaker's comparison trial: a stream has none
_NEAR_MISS = 0.85  # difflib ratio above which an unknown key is taken for a typo


def from_sagemaker(document: Any) -> Config:
    """The configuration a SageMaker JSON document (an object, or a bare list of rules) holds."""
    ignored: list[str] = []
    if isinstance(document, list):
        document = {RULES_KEY: document}
    if not isinstance(document, dict):
        raise ConfigError("config", None, "expected a JSON object or a list of rule configurations")
    _note_unread(document, (), ignored)
    rules_json = document.get(RULES_KEY) or []
    if not isinstance(rules_json, list):
        raise ConfigError("config", RULES_KEY, "expected a list")
    rules = tuple(_rule(entry, i, ignored) for i, entry in enumerate(rules_json))
    metrics = tuple(metric_definition(entry, i, "Name", "Regex")
                    for i, entry in enumerate(_metric_entries(document)))
    objective = None
    spec = _first_present(document, "HyperParameterTuningJobObjective",
                          ("HyperParameterTuningJobObjective",),
                          ("HyperParameterTuningJobConfig", "HyperParameterTuningJobObjective"))
    if spec is not None:
        if not isinstance(spec, dict) or "MetricName" not in spec:
            raise ConfigError("objective", "MetricName",
                              "HyperParameterTuningJobObjective needs MetricName and Type")
        objective = Objective(string_of(spec["MetricName"], "objective", "MetricName"),
                              spec.get("Type", "Minimize"))
    return Config(rules, metrics, objective, **settings_of(document), ignored=tuple(ignored))


def _note_unread(node: dict[str, Any], path: tuple[str, ...], ignored: list[str]) -> None:
    """List the keys of ``node`` (at ``path``) that are not read; a near miss is an error."""
    read = _READ[path]
    for key in node:
        if key in read:
            child = node[key]
            if path + (key,) in _READ and isinstance(child, dict):
                _note_unread(child, path + (key,), ignored)
            continue
        near = difflib.get_close_matches(str(key).lower(), [k.lower() for k in read], 1, _NEAR_MISS)
        if near:
            meant = next(k for k in read if k.lower() == near[0])
            raise ConfigError(".".join(("config", *path)), str(key),
                              f"unknown key; did you mean {meant!r}?")
        ignored.append(".".join((*path, str(key))))


def _rule(entry: Any, index: int, ignored: list[str]) -> RuleConfig:
    if not isinstance(entry, dict):
        raise ConfigError(f"rule #{index + 1}", None, "expected an object")
    name = entry.get("RuleConfigurationName")
    owner = f"rule {name!r}" if isinstance(name, str) else f"rule #{index + 1}"
    for key in entry:
        if key in _RULE_PLACEMENT:
            ignored.append(f"{key} of {owner}")
        elif key not in _RULE_FIELDS:
            raise ConfigError(owner, str(key), "unknown field of a rule configuration; known: "
                              + ", ".join(_RULE_FIELDS + _RULE_PLACEMENT))
    given = entry.get("RuleParameters")
    if not isinstance(given, dict) or "rule_to_invoke" not in given:
        raise ConfigError(owner, "rule_to_invoke",
                          "missing: RuleParameters must name the rule to invoke")
    given = dict(given)
    rule_type = string_of(given.pop("rule_to_invoke"), owner, "rule_to_invoke")
    for key in _IGNORED_PARAMETERS:
        if key in given:
            given.pop(key)
            ignored.append(f"RuleParameters.{key} of {owner}")
    name = rule_type if name is None else string_of(name, owner, "RuleConfigurationName")
    return RuleConfig.from_params(rule_type, name, given)


def _metric_entries(document: dict[str, Any]) -> list[Any]:
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
