"""Metric definitions: numbers parsed out of training logs with user regexes (docs/rules.md).

A definition is a name and a regex with at least one capture group, as in SageMaker's
``MetricDefinitions``. Each log line is split on ``\\r`` (progress bars), cleaned of ANSI escape
sequences, and searched with each definition separately; the first match's first group, parsed by
``float()``, is the value. Matching uses the ``regex`` package, whose ``timeout`` stops a search
within about a millisecond of its limit, under three budgets (:class:`MatchBudgets`): per
definition and received line (shared by the line's pieces), per batch (all lines of all trials,
so that no batch outlives the consumer group's session timeout whatever the regexes do), and per
definition and trial (the time it keeps taking beyond a small allowance per line). A definition
that exceeds its line or trial budget is disabled for that trial (and reported once) while the
others go on; lines met after the batch's budget is spent are not matched, and counted.

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

import math
import re
import time
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass

import regex

from .base import ConfigError

DEFAULT_MAX_DEFINITIONS = 20   # SageMaker's documented limit
MAX_DEFINITIONS_CAP = 40       # what SageMaker's current API allows
DEFAULT_TIME_BUDGET = 0.1      # seconds for one definition on one line
DEFAULT_TRIAL_BUDGET = 1.0     # seconds of excess for one definition over a trial's lines
LINE_ALLOWANCE = 0.001         # seconds per line that count as no excess

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


@dataclass(frozen=True)
class MatchBudgets:
    """How much matching time the definitions may take, at three scales (seconds).

    - ``line``: one definition on one received line (its pieces share it); a definition that
      exceeds it is disabled for that trial.
    - ``batch``: every definition on every line of one batch, all trials together (``None``: no
      bound). Each match is given at most what is left of it; once it is spent, the batch's
      remaining lines are not matched (skipped and counted) until the next batch begins.
    - ``trial``: one definition's *excess* over a trial's lines, a leaky bucket: each line adds
      what the definition took on it beyond ``allowance`` and takes away what it took less; a
      definition whose excess passes ``trial`` is disabled for that trial. Lines that each stay
      just under ``line`` are so disabled after about ``trial / line`` of them, while a definition
      that usually takes microseconds never accumulates any.
    """

    line: float = DEFAULT_TIME_BUDGET
    batch: float | None = None
    trial: float = DEFAULT_TRIAL_BUDGET
    allowance: float = LINE_ALLOWANCE


class MetricExtractor:
    """Applies the definitions to log lines; keeps which definitions each trial has disabled.

    ``disabled`` holds, per trial, the names of its disabled definitions, and ``excess`` per trial
    each definition's accumulated excess time (see :class:`MatchBudgets`): plain dicts by default;
    the engine passes views of its state store, so that they go with their trial.

    The batch budget applies between calls of :meth:`begin_batch` (none before the first).
    """

    def __init__(self, definitions: Sequence[MetricDefinition],
                 time_budget: float = DEFAULT_TIME_BUDGET,
                 clock: Callable[[], float] = time.perf_counter,
                 disabled: MutableMapping[str, frozenset[str]] | None = None,
                 budgets: MatchBudgets | None = None,
                 excess: MutableMapping[str, dict[str, float]] | None = None) -> None:
        self.definitions = tuple(definitions)
        self.budgets = budgets = budgets or MatchBudgets(line=time_budget)
        self.time_budget = budgets.line
        self._clock = clock
        self._compiled = tuple((d.name, regex.compile(d.regex)) for d in self.definitions)
        self._disabled: MutableMapping[str, frozenset[str]] = {} if disabled is None else disabled
        self._excess: MutableMapping[str, dict[str, float]] = {} if excess is None else excess
        self._newly_disabled: list[tuple[str, str, str]] = []
        self._batch_left = math.inf  # seconds of matching left in this batch
        self._batch_spent = 0.0
        self._skipping = False       # the batch's budget ran out: lines are skipped
        self.unparsable = 0
        self.timeouts = 0
        self.matches = 0             # searches started
        self.seconds = 0.0           # spent searching
        self.batch_seconds_max = 0.0  # most spent searching in one batch
        self.skipped_lines = 0       # lines not matched: their batch's budget was spent

    def begin_batch(self) -> None:
        """A batch begins: its budget is whole again."""
        if self.budgets.batch is not None:
            self._batch_left = self.budgets.batch
        self._batch_spent = 0.0
        self._skipping = False

    @property
    def skipping(self) -> bool:
        """Whether this batch's budget is spent (the rest of its lines are skipped)."""
        return self._skipping

    def extract(self, trial: str, line: str) -> list[tuple[str, float]]:
        """The (metric name, value) pairs a log line yields, in piece then definition order.

        The line budget is per definition and received line: the pieces of one line share it, so
        a line of many ``\\r`` pieces cannot multiply it. A search is given the least of what is
        left of the line's and of the batch's budget; a line that the batch's budget cuts short
        yields nothing, and it and the batch's later lines are counted in :attr:`skipped_lines`.
        """
        if self._skipping:
            self.skipped_lines += 1
            return []
        pieces = split_pieces(line)
        if not pieces:
            return []
        found: list[tuple[str, float]] = []
        disabled = self._disabled.get(trial)
        compiled = self._compiled
        spent = [0.0] * len(compiled)
        budget, clock = self.time_budget, self._clock
        cut = False
        now = clock()
        for piece in pieces:
            piece = strip_ansi(piece)
            for index, (name, pattern) in enumerate(compiled):
                if disabled is not None and name in disabled:
                    continue
                line_left = budget - spent[index]
                left = line_left if line_left < self._batch_left else self._batch_left
                timed_out = False
                if left > 0.0:
                    self.matches += 1
                    try:
                        match = pattern.search(piece, timeout=left)
                    except TimeoutError:
                        timed_out = True
                    after = clock()
                    took, now = after - now, after
                    spent[index] += took
                    self._batch_left -= took
                    self._batch_spent += took
                    self.seconds += took
                else:
                    timed_out = True
                if timed_out:
                    if left == line_left:  # the definition's own budget: disable it
                        self.timeouts += 1
                        disabled = self._disable(trial, name, disabled, "line")
                        continue
                    cut = True  # the batch's budget: the rest of the batch waits for no match
                    break
                if match is None:
                    continue
                capture = match.group(1)
                try:
                    found.append((name, float(capture.strip())))
                except (AttributeError, ValueError):  # group did not take part, or not a number
                    self.unparsable += 1
            if cut:
                break
        if self._batch_spent > self.batch_seconds_max:
            self.batch_seconds_max = self._batch_spent
        self._charge(trial, spent, disabled)
        if cut:
            self._skipping = True
            self.skipped_lines += 1
            return []
        return found

    def _charge(self, trial: str, spent: list[float], disabled: frozenset[str] | None) -> None:
        """Add each definition's excess on this line to the trial's bucket; disable past budget."""
        allowance = self.budgets.allowance
        owed = self._excess.get(trial)
        if owed is None and max(spent) <= allowance:
            return  # the usual line: nothing owed before, nothing now
        owed = dict(owed or {})
        for (name, _), took in zip(self._compiled, spent, strict=True):
            if disabled is not None and name in disabled:
                owed.pop(name, None)
                continue
            total = owed.get(name, 0.0) + took - allowance
            if total <= 0.0:
                owed.pop(name, None)
            elif total > self.budgets.trial:
                owed.pop(name, None)
                disabled = self._disable(trial, name, disabled, "trial")
            else:
                owed[name] = total
        if owed:
            self._excess[trial] = owed
        elif trial in self._excess:
            del self._excess[trial]

    def _disable(self, trial: str, name: str, disabled: frozenset[str] | None,
                 why: str) -> frozenset[str]:
        disabled = self._disabled[trial] = (disabled or frozenset()) | {name}
        self._newly_disabled.append((trial, name, why))
        return disabled

    def drain_disabled(self) -> list[tuple[str, str, str]]:
        """(trial, definition name, why) disabled since the last call; ``why`` is ``"line"`` (one
        line exceeded the line budget) or ``"trial"`` (the trial's lines, the trial budget)."""
        newly, self._newly_disabled = self._newly_disabled, []
        return newly

    def disabled(self, trial: str) -> frozenset[str]:
        return frozenset(self._disabled.get(trial, ()))

    def forget(self, trial: str) -> None:
        self._disabled.pop(trial, None)
        self._excess.pop(trial, None)
