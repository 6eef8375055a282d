"""The built-in rules by type name: adding a rule is one module and one line here.

>>> sorted(RULES)[:2]
['LossNotDecreasing', 'PoorWeightInitialization']
>>> build_rule("LossNotDecreasing", "loss-stalled", {"num_steps": "5"}).num_steps
5
"""

from __future__ import annotations

from typing import Any, Mapping

from .base import ConfigError, Rule
from .loss_not_decreasing import LossNotDecreasing
from .poor_weight_initialization import PoorWeightInitialization
from .saturated_activation import SaturatedActivation
from .weight_update_ratio import WeightUpdateRatio

RULES: dict[str, type[Rule]] = {
    "LossNotDecreasing": LossNotDecreasing,
    "WeightUpdateRatio": WeightUpdateRatio,
    "SaturatedActivation": SaturatedActivation,
    "PoorWeightInitialization": PoorWeightInitialization,
}


def rule_class(rule_type: str, name: str | None = None) -> type[Rule]:
    """The class of built-in ``rule_type``; :class:`ConfigError` naming the rule if there is none."""
    try:
        return RULES[rule_type]
    except (KeyError, TypeError):
        owner = f"rule {name or rule_type!r}"
        raise ConfigError(owner, None, f"unknown rule type {rule_type!r}; built-in rules: "
                          + ", ".join(sorted(RULES))) from None


def build_rule(rule_type: str, name: str | None = None, params: Mapping[str, Any] | None = None) -> Rule:
    """An instance of built-in ``rule_type`` named ``name`` with ``params`` (raw or resolved)."""
    return rule_class(rule_type, name)(name, **dict(params or {}))
