"""Tensor selection: the union of named collections and regex matches (docs/rules.md, shared semantics).

A regex matches anywhere in the name (``re.search``), not the whole name.

>>> sel = TensorSelection(collections=("losses",), patterns=(r"\\.tanh_input",))
>>> sel.matches("loss", ("losses",)), sel.matches("fc1.tanh_input", ()), sel.matches("fc1.weight", ("weights",))
(True, True, False)
>>> TensorSelection((), ()).empty
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TensorSelection:
    collections: tuple[str, ...]
    patterns: tuple[str, ...]
    _compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", tuple(re.compile(p) for p in self.patterns))

    @property
    def empty(self) -> bool:
        return not self.collections and not self.patterns

    def matches(self, name: str, collections: tuple[str, ...]) -> bool:
        """Whether a tensor named ``name`` listed in ``collections`` is selected."""
        for collection in collections:
            if collection in self.collections:
                return True
        return any(p.search(name) for p in self._compiled)
