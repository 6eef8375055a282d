"""The built-in rules by type name, and where a configuration's rule type is found.

Adding a built-in rule is one module and one line here; a rule written by a user is found by
import path or entry point (:mod:`.user_rules`).

>>> sorted(RULES)[:4]
['AllZero', 'ClassImbalance', 'DeadRelu', 'ExplodingTensor']
>>> build_rule("LossNotDecreasing", "loss-stalled", {"num_steps": "5"}).num_steps
5
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .all_zero import AllZero
from .base import ConfigError, Rule
from .class_imbalance import ClassImbalance
from .dead_relu import DeadRelu
from .exploding_tensor import ExplodingTensor
from .loss_not_decreasing import LossNotDecreasing
from .overfit import Overfit
from .overtraining import Overtraining
from .poor_weight_initialization import PoorWeightInitialization
from .saturated_activation import SaturatedActivation
from .stalled_training import StalledTrainingRule
from .tensor_variance import TensorVariance
from .unchanged_tensor import UnchangedTensor
from .user_rules import ENTRY_POINT_GROUP, closest, entry_point_names, load_rule_class
from .vanishing_gradient import VanishingGradient
from .weight_update_ratio import WeightUpdateRatio

RULES: dict[str, type[Rule]] = {
    "LossNotDecreasing": LossNotDecreasing,
    "WeightUpdateRatio": WeightUpdateRatio,
    "SaturatedActivation": SaturatedActivation,
    "PoorWeightInitialization": PoorWeightInitialization,
    "ExplodingTensor": ExplodingTensor,
    "VanishingGradient": VanishingGradient,
    "DeadRelu": DeadRelu,
    "UnchangedTensor": UnchangedTensor,
    "AllZero": AllZero,
    "TensorVariance": TensorVariance,
    "Overfit": Overfit,
    "Overtraining": Overtraining,
    "StalledTrainingRule": StalledTrainingRule,
    "ClassImbalance": ClassImbalance,
}


def rule_class(rule_type: str, name: str | None = None) -> type[Rule]:
    """The class of ``rule_type``: a built-in name, an import path or an entry-point name.

    A built-in name wins over an entry point of the same name. :class:`ConfigError` naming the
    rule when there is none, suggesting the closest name.
    """
    if not isinstance(rule_type, str):
        raise ConfigError(f"rule {name!r}", None, f"the rule type must be a string, got {rule_type!r}")
    found = RULES.get(rule_type)
    if found is None:
        found = load_rule_class(rule_type, name or rule_type)
    if found is not None:
        return found
    known = [*RULES, *entry_point_names()]
    suggestion = closest(rule_type, known)
    hint = f"did you mean {suggestion!r}? " if suggestion else ""
    raise ConfigError(f"rule {name or rule_type!r}", None,
                      f"unknown rule type {rule_type!r}; {hint}built-in rules: " + ", ".join(sorted(RULES))
                      + f"; a rule of your own is named 'module:Class' or by an entry point of group "
                      f"{ENTRY_POINT_GROUP}")


def build_rule(rule_type: str, name: str | None = None, params: Mapping[str, Any] | None = None) -> Rule:
    """An instance of ``rule_type`` named ``name`` with ``params`` (raw or resolved).

    Its ``rule_type`` is the name the configuration used (a user rule's import path or entry point).
    """
    rule = rule_class(rule_type, name)(name, **dict(params or {}))
    if rule.rule_type != rule_type:
        rule.rule_type = rule_type
    return rule
