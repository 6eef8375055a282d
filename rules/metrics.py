"""Metric definitions: numbers parsed out of training logs with user regexes (RULES.md).

A definition is a name and a regex with at least one capture group, as in SageMaker's
``MetricDefinitions``. Each log line is split on ``\\r`` (progress bars), cleaned of ANSI escape
sequences, and searched with each definition separately; the first match's first group, parsed by
``float()``, is the value. Matching uses the ``regex`` package with a time budget per definition
and received line, shared by the line's pieces: a definition that exceeds it is disabled for that
trial (and reported once) while the others go on.

>>> extractor = MetricExtractor([MetricDefinition("loss", r"Loss = (.*?);"),
...                              MetricDefinition("ganloss", r"GAN_loss=(.*?);")])
>>> extractor.extract("run-1", "GAN_loss=0.138318; Loss = 16.020744; took 0.7s")
[('loss', 16.020744), ('ganloss', 0.138318)]
>>> extractor.extract("run-1", "\\x1b[32mLoss = dog;\\x1b[0m"), extractor.unparsable
([], 1)
>>> split_pieces("epoch 1  10%\\repoch 1 100%\\r")
['epoch 1  10%', 'epoch 1 100%']
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import regex

from .base import ConfigError

DEFAULT_MAX_DEFINITIONS = 20   # SageMaker's documented limit
MAX_DEFINITIONS_CAP = 40       # what SageMaker's current API allows
DEFAULT_TIME_BUDGET = 0.1      # seconds for one definition on one line

# CSI (colours, cursor moves), OSC (titles, links), nF (character sets) and two-byte escapes.
_ANSI = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -/]+[0-~]|[@-Z\\-_])")


@dataclass(frozen=True)
class MetricDefinition:
    """A metric's name and regex; invalid ones raise :class:`ConfigError` naming the definition."""

    name: str
    regex: str

    def __post_init__(self) -> None:
        owner = f"metric definition {self.name!r}"
        if not isinstance(self.name, str) or not 1 <= len(self.name) <= 255:
            raise ConfigError(owner, "Name", "must be a string of 1..255 characters")
        if not isinstance(self.regex, str) or not 1 <= len(self.regex) <= 500:
            raise ConfigError(owner, "Regex", "must be a string of 1..500 characters")
        try:
            compiled = regex.compile(self.regex)
        except (regex.error, OverflowError, RecursionError) as exc:
            raise ConfigError(owner, "Regex", f"does not compile: {exc}") from None
        if compiled.groups < 1:
            raise ConfigError(owner, "Regex", "needs a capture group, e.g. 'Loss = (.*?);'")


def check_definitions(definitions: Sequence[MetricDefinition], limit: int) -> None:
    """At most ``limit`` definitions, names unique; :class:`ConfigError` otherwise."""
    if len(definitions) > limit:
        raise ConfigError(f"metric definition {definitions[limit].name!r}", None,
                          f"{len(definitions)} definitions exceed the limit of {limit} "
                          f"(max_metric_definitions, at most {MAX_DEFINITIONS_CAP})")
    seen: set[str] = set()
    for definition in definitions:
        if definition.name in seen:
            raise ConfigError(f"metric definition {definition.name!r}", "Name",
                              "defined twice; names must be unique")
        seen.add(definition.name)


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences."""
    return _ANSI.sub("", text) if "\x1b" in text else text


def split_pieces(line: str) -> list[str]:
    """The pieces a line is matched as: split on ``\\n``, a trailing ``\\r`` dropped, split on ``\\r``.

    Empty pieces are left out: they cannot hold a number.
    """
    if "\r" not in line and "\n" not in line:
        return [line] if line else []
    pieces: list[str] = []
    for part in line.split("\n"):
        if part.endswith("\r"):
            part = part[:-1]
        pieces.extend(piece for piece in part.split("\r") if piece)
    return pieces


class MetricExtractor:
    """Applies the definitions to log lines; keeps which definitions each trial has disabled."""

    def __init__(self, definitions: Sequence[MetricDefinition],
                 time_budget: float = DEFAULT_TIME_BUDGET,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.definitions = tuple(definitions)
        self.time_budget = time_budget
        self._clock = clock
        self._compiled = tuple((d.name, regex.compile(d.regex)) for d in self.definitions)
        self._disabled: dict[str, set[str]] = {}
        self._newly_disabled: list[tuple[str, str]] = []
        self.unparsable = 0
        self.timeouts = 0

    def extract(self, trial: str, line: str) -> list[tuple[str, float]]:
        """The (metric name, value) pairs a log line yields, in piece then definition order.

        The time budget is per definition and received line: the pieces of one line share it, so
        a line of many ``\\r`` pieces cannot multiply it.
        """
        found: list[tuple[str, float]] = []
        disabled = self._disabled.get(trial)
        pieces = split_pieces(line)
        spent = [0.0] * len(self._compiled) if len(pieces) > 1 else None
        clock = self._clock
        for piece in pieces:
            piece = strip_ansi(piece)
            for index, (name, pattern) in enumerate(self._compiled):
                if disabled is not None and name in disabled:
                    continue
                try:
                    if spent is None:  # one piece: the whole budget, no clock needed
                        match = pattern.search(piece, timeout=self.time_budget)
                    else:
                        left = self.time_budget - spent[index]
                        if left <= 0.0:
                            raise TimeoutError
                        started = clock()
                        try:
                            match = pattern.search(piece, timeout=left)
                        finally:
                            spent[index] += clock() - started
                except TimeoutError:
                    self.timeouts += 1
                    disabled = self._disabled.setdefault(trial, set())
                    disabled.add(name)
                    self._newly_disabled.append((trial, name))
                    continue
                if match is None:
                    continue
                capture = match.group(1)
                try:
                    found.append((name, float(capture.strip())))
                except (AttributeError, ValueError):  # group did not take part, or not a number
                    self.unparsable += 1
        return found

    def drain_disabled(self) -> list[tuple[str, str]]:
        """(trial, definition name) disabled since the last call."""
        newly, self._newly_disabled = self._newly_disabled, []
        return newly

    def disabled(self, trial: str) -> frozenset[str]:
        return frozenset(self._disabled.get(trial, ()))

    def forget(self, trial: str) -> None:
        self._disabled.pop(trial, None)
