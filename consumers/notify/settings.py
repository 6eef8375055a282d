"""The notifier's settings: the ``[notify]`` table of the configuration file, then the options.

The table lives in the same file as the rules (``trainsentry run --config`` skips it), so one file
describes a deployment; ``notify --config FILE`` reads only this table, and a file with only this
table is fine too. Every key is optional; an option given on the command line replaces the key::

    [notify]
    to = ["slack://T000/B000/XXXX/#training", "mailto://bot:PASSWORD@example.com?to=ml@example.com"]
    wait_seconds = 300                 # at most one message per (trial, rule) per 5 minutes
    trials = ["resnet-lr0.1"]          # only these trials (default: all)
    rules = ["LossNotDecreasing"]      # only these rules, by name or built-in type (default: all)
    min_severity = "warning"           # info | warning | error (default: info, so everything)
    give_up_after_seconds = 3600       # a message a destination keeps refusing is given up then

A problem is one line naming the key:

>>> parse_notify_table({"wait_seconds": -1})
Traceback (most recent call last):
...
trainsentry.rules.base.ConfigError: [notify]: parameter 'wait_seconds': expected a number >= 0, got -1
>>> parse_notify_table({"to": "json://localhost:8080", "min_severity": "error"}).to
('json://localhost:8080',)
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from trainsentry.rules.base import ConfigError

from .severity import Severity

DEFAULT_NOTIFY_GROUP = "trainsentry-notify"
DEFAULT_START = "now"  # where a group that never committed a partition starts: now | beginning
OWNER = "[notify]"


@dataclass(frozen=True)
class NotifySettings:
    """What ``trainsentry notify`` does (its Kafka settings are separate)."""

    to: tuple[str, ...] = ()
    wait_seconds: float = 300.0
    trials: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    min_severity: Severity = Severity.INFO
    give_up_after_seconds: float = 3600.0
    first_backoff_seconds: float = 1.0
    max_backoff_seconds: float = 60.0

    def overridden(self, **given: Any) -> NotifySettings:
        """These settings with every ``given`` value that is not ``None`` or empty."""
        return replace(self, **{k: v for k, v in given.items() if v not in (None, (), [])})


_KEYS = ("to", "wait_seconds", "trials", "rules", "min_severity", "give_up_after_seconds")


def load_notify_settings(path: str | Path) -> NotifySettings:
    """The ``[notify]`` table of a configuration file (TOML, or JSON with a ``notify`` object)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {str(path)!r}", None, f"cannot be read: {exc}") from None
    try:
        if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
            document = json.loads(text)
        else:
            document = tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config {str(path)!r}", None, f"cannot be parsed: {exc}") from None
    table = document.get("notify", {}) if isinstance(document, dict) else {}
    if not isinstance(table, dict):
        raise ConfigError("config", "notify", "expected a table ([notify])")
    return parse_notify_table(table)


def parse_notify_table(table: dict[str, Any]) -> NotifySettings:
    for key in table:
        if key not in _KEYS:
            raise ConfigError(OWNER, key, "unknown setting; known: " + ", ".join(_KEYS))
    given: dict[str, Any] = {}
    for key in ("to", "trials", "rules"):
        if key in table:
            given[key] = _strings(table[key], key)
    for key in ("wait_seconds", "give_up_after_seconds"):
        if key in table:
            given[key] = _seconds(table[key], key)
    if "min_severity" in table:
        try:
            given["min_severity"] = Severity.option(table["min_severity"])
        except ValueError as exc:
            raise ConfigError(OWNER, "min_severity", str(exc)) from None
    return NotifySettings(**given)


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        # The value is not shown: a destination list holds secrets.
        raise ConfigError(OWNER, key, "expected a string or a list of non-empty strings")
    return tuple(value)


def _seconds(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(OWNER, key, f"expected a number >= 0, got {value!r}")
    return float(value)

