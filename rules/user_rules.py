"""Rules written by users: found by import path or by entry point, checked before they run.

A configuration names a rule of its own where it names a built-in one (docs/rules.md, "Rules
written by users"):

- by import path, ``"package.module:Class"`` (the class may be nested: ``"module:Outer.Inner"``),
  importable by the process that loads the configuration;
- by the name an installed package registers under the entry-point group :data:`ENTRY_POINT_GROUP`
  (``[project.entry-points."trainsentry.rules"]`` in its ``pyproject.toml``).

What is found must be a concrete subclass of :class:`~trainsentry.rules.base.Rule`; anything else
(a module that does not import, a missing name, a function, an abstract class) is a
:class:`ConfigError` naming the rule, in one line. A name that is neither is reported with the
closest known names (:func:`closest`).

>>> load_rule_class("trainsentry.rules.loss_not_decreasing:LossNotDecreasing", "r").__name__
'LossNotDecreasing'
>>> load_rule_class("trainsentry.rules.base:Finding", "r")
Traceback (most recent call last):
...
trainsentry.rules.base.ConfigError: rule 'r': 'trainsentry.rules.base:Finding' is not a rule: a rule is a subclass of trainsentry.rules.Rule
>>> closest("LossNotDecreasng", ["LossNotDecreasing", "WeightUpdateRatio"])
'LossNotDecreasing'
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Iterable
from importlib import metadata

from .base import ConfigError, Rule

ENTRY_POINT_GROUP = "trainsentry.rules"


def is_import_path(rule_type: str) -> bool:
    """Whether ``rule_type`` is written as ``module:Class``."""
    return ":" in rule_type


def entry_point_names() -> list[str]:
    """The names installed packages register under :data:`ENTRY_POINT_GROUP`, sorted."""
    return sorted({entry.name for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)})


def load_rule_class(rule_type: str, name: str) -> type[Rule] | None:
    """The rule class ``rule_type`` names (an import path or an entry-point name).

    ``None`` when it is not an import path and no entry point has that name; :class:`ConfigError`
    naming the rule ``name`` when it names something that cannot be loaded or is not a rule.
    """
    owner = f"rule {name!r}"
    if is_import_path(rule_type):
        found = _import(rule_type, owner)
    else:
        entries = [e for e in metadata.entry_points(group=ENTRY_POINT_GROUP) if e.name == rule_type]
        if not entries:
            return None
        values = sorted({entry.value for entry in entries})
        if len(values) > 1:
            raise ConfigError(owner, None, f"the entry point {rule_type!r} of group "
                              f"{ENTRY_POINT_GROUP} is registered more than once: {', '.join(values)}; "
                              "name the rule by its import path instead")
        found = _import(values[0], owner, f"the entry point {rule_type!r} ({values[0]})")
    return _checked(found, rule_type, owner)


def closest(word: str, names: Iterable[str]) -> str | None:
    """The name among ``names`` closest to ``word`` (case aside), or ``None`` if none is close."""
    by_lower = {candidate.lower(): candidate for candidate in names}
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[found[0]] if found else None


def _import(path: str, owner: str, what: str | None = None) -> object:
    """The object at ``module:attribute.path``."""
    what = what or repr(path)
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ConfigError(owner, None, f"{what} is not an import path: expected 'module:Class'")
    try:
        found: object = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(owner, None, f"{what}: cannot import {module_name!r}: {exc}") from None
    except Exception as exc:  # the user's module raised while importing: one line, not a traceback
        raise ConfigError(owner, None, f"{what}: importing {module_name!r} raised "
                          f"{type(exc).__name__}: {exc}") from None
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ConfigError(owner, None, f"{what}: {module_name!r} has no {attribute!r}") from None
    return found


def _checked(found: object, rule_type: str, owner: str) -> type[Rule]:
    if not (isinstance(found, type) and issubclass(found, Rule)):
        raise ConfigError(owner, None, f"{rule_type!r} is not a rule: a rule is a subclass of "
                          "trainsentry.rules.Rule")
    if inspect.isabstract(found):
        missing = ", ".join(sorted(getattr(found, "__abstractmethods__", ())))
        raise ConfigError(owner, None, f"{rule_type!r} does not implement {missing}")
    return found
