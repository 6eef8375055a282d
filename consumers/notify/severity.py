"""How serious an alert is: ``info`` < ``warning`` < ``error`` (docs/protocol.md, optional ``severity``).

An alert without a severity is a ``warning``: that is what a rule's alert meant before severities
existed, so ``--min-severity warning`` keeps every alert of a configuration that sets none. (The
protocol refuses an alert with another value; were one to come through, it would read as ``warning``
too: a notification is never dropped because of a word it does not know.)

>>> Severity.parse("error") > Severity.WARNING
True
>>> Severity.parse(None), Severity.parse("critical")
(<Severity.WARNING: 'warning'>, <Severity.WARNING: 'warning'>)
>>> Severity.option("fatal")
Traceback (most recent call last):
...
ValueError: expected one of info, warning, error, got 'fatal'
"""

from __future__ import annotations

import enum
from typing import Any


@enum.unique
class Severity(enum.Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: Severity) -> bool:
        return self.rank < other.rank

    def __le__(self, other: Severity) -> bool:
        return self.rank <= other.rank

    def __gt__(self, other: Severity) -> bool:
        return self.rank > other.rank

    def __ge__(self, other: Severity) -> bool:
        return self.rank >= other.rank

    @classmethod
    def parse(cls, value: Any) -> Severity:
        """The severity an alert's field says; ``warning`` when absent or unknown."""
        if isinstance(value, str):
            found = _BY_NAME.get(value.lower())
            if found is not None:
                return found
        return DEFAULT_SEVERITY

    @classmethod
    def option(cls, text: str) -> Severity:
        """A severity given by a person (``--min-severity``, the configuration): exact or an error."""
        found = _BY_NAME.get(text.lower()) if isinstance(text, str) else None
        if found is None:
            raise ValueError(f"expected one of {', '.join(_BY_NAME)}, got {text!r}")
        return found


_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.ERROR: 2}
_BY_NAME = {s.value: s for s in Severity}
DEFAULT_SEVERITY = Severity.WARNING
