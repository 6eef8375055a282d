"""A value from a record, shown in a message: always short, whatever the value holds.

Errors and dead letters quote what they refused; a value may be megabytes long or nested a thousand
deep, so it is never shown with plain ``repr``.

>>> len(brief("x" * 1000)) <= 80
True
>>> nested = []
>>> for _ in range(5000):
...     nested = [nested]
>>> brief(nested)
'[[[[...]]]]'
>>> brief(b"\\x00" * 10_000_000)
"b'\\\\x00\\\\x00\\\\x00\\\\x00\\\\x00'... (10000000 bytes)"
"""

from __future__ import annotations

import reprlib
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxlevel = 3        # deeper containers are shown as [...] and {...}: bounded recursion
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 6
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlong = 40


def brief(value: Any, limit: int = 80) -> str:
    """``repr`` of ``value`` cut to at most ``limit`` characters (``...`` marks the cut)."""
    if isinstance(value, (bytes, bytearray)) and len(value) > 16:
        return f"{bytes(value[:5])!r}... ({len(value)} bytes)"
    shown = _REPR.repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
