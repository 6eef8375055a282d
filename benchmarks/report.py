"""Rows of figures: printed as a table, and written into the figures section of BENCHMARKS.md."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

BEGIN = "<!-- figures: written by `make bench`; edit outside these markers -->"
END = "<!-- end of figures -->"


@dataclass(frozen=True)
class Target:
    text: str
    met: bool | None  # None: could not be measured

    @property
    def verdict(self) -> str:
        return {True: "met", False: "NOT met", None: "n/a"}[self.met]


@dataclass(frozen=True)
class Row:
    """One figure, what it is compared with, and its target."""

    figure: str
    value: str
    baseline: str = ""
    ratio: str = ""
    target: Target | None = None


@dataclass
class Section:
    """What one measurement module found."""

    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def number(value: float, digits: int = 3) -> str:
    """A figure with ``digits`` significant digits and thousands separators."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def table(sections: Sequence[Section]) -> list[list[str]]:
    rows = [["figure", "value", "baseline (same run)", "ratio", "target", "verdict"]]
    for section in sections:
        for row in section.rows:
            target = row.target
            rows.append([f"{section.title}: {row.figure}", row.value, row.baseline, row.ratio,
                         target.text if target else "", target.verdict if target else ""])
    return rows


def render_text(sections: Sequence[Section]) -> str:
    rows = table(sections)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(sections: Sequence[Section], machine: dict[str, str], command: str) -> str:
    rows = table(sections)
    out = [BEGIN, "", f"Measured {machine['date']} with `{command}` (commit {machine['commit']}).", ""]
    out += [f"- **{key}**: {value}" for key, value in machine.items() if key not in ("date", "commit")]
    out += ["", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows[1:]]
    for section in sections:
        if section.notes:
            out += ["", f"**{section.title}**", ""]
            out += [f"- {note}" for note in section.notes]
    out += ["", END]
    return "\n".join(out)


def write_figures(path: Path, figures: str) -> None:
    """Replace the figures section of ``path`` (created with just that section if missing)."""
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        text = text.rstrip("\n") + "\n\n" + BEGIN + "\n" + END + "\n"
        start, end = text.find(BEGIN), text.find(END)
    path.write_text(text[:start] + figures + text[end + len(END):])
