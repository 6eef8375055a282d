"""The rules: pure numpy operators over series of tensors, plus metric definitions and configuration.

Nothing here knows of Kafka, asyncio or clocks; the engine (``consumers/engine/``) drives it and
owns the rules' state.
"""

from .base import ConfigError, Finding, Observation, Param, Rule, View
from .registry import RULES, build_rule

__all__ = ["ConfigError", "Finding", "Observation", "Param", "Rule", "View", "RULES", "build_rule"]
