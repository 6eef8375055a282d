"""Parameter parsers: native TOML values and SageMaker's strings give the same result.

SageMaker's ``RuleParameters`` is a string-to-string map, so every parser takes the string form as
well as the native one, and its own output (parsing is idempotent). A parser raises ``ValueError``
with the problem; the rule's loader adds the rule and parameter names.

>>> parse_bool("True"), parse_bool(False)
(True, False)
>>> integer(minimum=1)("10"), number()("0.1"), number()(3)
(10, 0.1, 3.0)
>>> names("losses, metrics"), names(""), names(["weights"])
(('losses', 'metrics'), (), ('weights',))
>>> value_range("(-9.4999, 9.4999)"), value_range([-23, 16.99999])
((-9.4999, 9.4999), (-23.0, 16.99999))
>>> severity("Error"), severity("warning")
('error', 'warning')
>>> number(at_least=0, below=100)("100")
Traceback (most recent call last):
...
ValueError: must be < 100
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from trainsentry.protocol.events import SEVERITIES

_MODES = ("TRAIN", "EVAL", "PREDICT", "GLOBAL")


def parse_bool(value: Any) -> bool:
    """``True``/``False`` natively or as a string (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError("expected True or False")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number")
    if isinstance(value, (int, float)):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ValueError("expected a number") from None
    else:
        raise ValueError("expected a number")
    if math.isnan(result):
        raise ValueError("expected a number, not NaN")
    return result


def integer(minimum: int | None = None) -> Callable[[Any], int]:
    """A parser of whole numbers (``10``, ``"10"``, and ``10.0`` since SageMaker documents floats)."""

    def parse(value: Any) -> int:
        number_ = _to_float(value)
        if not math.isfinite(number_) or number_ != int(number_):
            raise ValueError("expected a whole number")
        result = int(number_)
        if minimum is not None and result < minimum:
            raise ValueError(f"must be >= {minimum}")
        return result

    return parse


def number(at_least: float | None = None, at_most: float | None = None,
           below: float | None = None, above: float | None = None) -> Callable[[Any], float]:
    """A parser of float64 numbers within optional bounds (``inf`` allowed, NaN not)."""

    def parse(value: Any) -> float:
        result = _to_float(value)
        if at_least is not None and result < at_least:
            raise ValueError(f"must be >= {at_least:g}")
        if at_most is not None and result > at_most:
            raise ValueError(f"must be <= {at_most:g}")
        if below is not None and not result < below:
            raise ValueError(f"must be < {below:g}")
        if above is not None and not result > above:
            raise ValueError(f"must be > {above:g}")
        return result

    return parse


def optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``parse``, but ``None``, ``""`` and ``"None"`` mean "not set"."""

    def parse_optional(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip() in ("", "None", "none")):
            return None
        return parse(value)

    return parse_optional


def names(value: Any) -> tuple[str, ...]:
    """A list of strings, or one comma-separated string; items stripped, empty ones dropped."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        raise ValueError("expected a list of strings or a comma-separated string")
    return tuple(item.strip() for item in items if item.strip())


def patterns(value: Any) -> tuple[str, ...]:
    """Like :func:`names`, and each item must compile as a Python regular expression."""
    result = names(value)
    for pattern in result:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"regex {pattern!r} does not compile: {exc}") from None
    return result


_RANGE = re.compile(r"^\s*[\(\[]?\s*([^,\s\)\]]+)\s*,\s*([^,\s\)\]]+)\s*[\)\]]?\s*$")


def value_range(value: Any) -> tuple[float, float]:
    """``(min, max)``: a two-number list or a string such as ``"(-9.4999, 9.4999)"``; min < max."""
    if isinstance(value, str):
        match = _RANGE.match(value)
        if not match:
            raise ValueError("expected '(min, max)'")
        low, high = _to_float(match.group(1)), _to_float(match.group(2))
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = _to_float(value[0]), _to_float(value[1])
    else:
        raise ValueError("expected (min, max)")
    if not low < high:
        raise ValueError("min must be < max")
    return (low, high)


def mode(value: Any) -> str | None:
    """One of TRAIN, EVAL, PREDICT, GLOBAL (any case), or not set."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "none")):
        return None
    if isinstance(value, str) and value.strip().upper() in _MODES:
        return value.strip().upper()
    raise ValueError("expected one of " + ", ".join(_MODES))


def severity(value: Any) -> str:
    """One of info, warning, error (any case), as alerts carry it."""
    if isinstance(value, str) and value.strip().lower() in SEVERITIES:
        return value.strip().lower()
    raise ValueError("expected one of " + ", ".join(SEVERITIES))
