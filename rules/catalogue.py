"""The rule tables of the documentation, generated from the rules' declared parameters.

README.md and docs/rules.md hold marked blocks that this module writes; everything between the
markers is generated, the rest of the files is left alone:

- ``<!-- rule-params:NAME -->`` ... ``<!-- /rule-params -->``: the parameter table of the built-in
  rule ``NAME`` (its ``Rule.params``: name, default, meaning), or of ``SHARED_PARAMS`` for
  ``NAME`` = ``shared``;
- ``<!-- rule-catalogue -->`` ... ``<!-- /rule-catalogue -->``: one row per registered built-in
  rule: its name (a link to its section of docs/rules.md), what makes it fire (the first sentence
  of its class docstring) and its parameters.

A block naming a rule that is not registered is left as written, so the documentation of a rule
can precede its registration; once registered, its table is generated like any other.
``python -m trainsentry.rules.catalogue`` rewrites the blocks; ``--check`` only says which file
is out of date (exit code 1).

>>> print(format_default((-9.4999, 9.4999)), format_default(("weights",)), format_default(1e-8))
`(-9.4999, 9.4999)` `weights` `1e-8`
>>> text = "Intro\\n<!-- rule-params:shared -->\\nstale\\n<!-- /rule-params -->\\nOutro\\n"
>>> print(render(text))
Intro
<!-- rule-params:shared -->
| parameter | default | meaning |
|---|---|---|
| `stop_at_first` | `false` | stop the rule for a trial after its first alert |
| `severity` | none | info, warning or error, carried on its alerts; none: the rule type's default |
<!-- /rule-params -->
Outro
<BLANKLINE>
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .base import SHARED_PARAMS, Param, Rule
from .registry import RULES

SHARED = "shared"  # the block name of the parameters every rule accepts
DOCS_RULES = "docs/rules.md"
FILES = ("README.md", DOCS_RULES)  # relative to the repository root

_PARAMS_BLOCK = re.compile(
    r"(<!-- rule-params:(?P<name>[^ >]+) -->\n)(?P<body>.*?)(<!-- /rule-params -->)", re.S)
_CATALOGUE_BLOCK = re.compile(
    r"(<!-- rule-catalogue -->\n)(?P<body>.*?)(<!-- /rule-catalogue -->)", re.S)


def format_default(value: Any) -> str:
    """A parameter's default as a table shows it: the value as a user would write it, or none."""
    if value is None or value == ():
        return "none"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, tuple) and len(value) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return f"`({_number(value[0])}, {_number(value[1])})`"
    if isinstance(value, tuple):
        return "`" + ", ".join(str(v) for v in value) + "`"
    if isinstance(value, (int, float)):
        return f"`{_number(value)}`"
    return f"`{value}`"


def _number(value: float) -> str:
    """``repr`` without the exponent's padding: 1e-08 reads 1e-8."""
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m[1] == "-" else "") + m[2], repr(value))


def _cell(text: str) -> str:
    """Text for one table cell: a ``|`` would end the cell, even inside code."""
    return text.replace("|", "\\|")


def param_table(params: Mapping[str, Param]) -> str:
    """A Markdown table of ``params``, in declaration order."""
    rows = ["| parameter | default | meaning |", "|---|---|---|"]
    for name, param in params.items():
        rows.append(f"| `{name}` | {_cell(format_default(param.default))} | {_cell(param.doc)} |")
    return "\n".join(rows) + "\n"


def summary(rule: type[Rule]) -> str:
    """What makes ``rule`` fire: the first sentence of its class docstring, in Markdown."""
    first = (rule.__doc__ or "").strip().split("\n\n")[0]
    sentence = " ".join(first.split())
    sentence = re.split(r"(?<=\.)\s", sentence, maxsplit=1)[0]
    return sentence.replace("``", "`")


def anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: ``LossNotDecreasing`` -> ``lossnotdecreasing``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def catalogue_table(rules: Mapping[str, type[Rule]] = RULES, docs: str = DOCS_RULES) -> str:
    """One row per registered rule: name (linked to its section), what fires it, its parameters."""
    rows = ["| rule | fires when | parameters |", "|---|---|---|"]
    for rule_type, rule in rules.items():
        names = ", ".join(f"`{name}`" for name in rule.params) or "none"
        rows.append(f"| [{rule_type}]({docs}#{anchor(rule_type)}) | "
                    f"{_cell(summary(rule))} | {names} |")
    return "\n".join(rows) + "\n"


def table_for(name: str, rules: Mapping[str, type[Rule]] = RULES) -> str | None:
    """The generated table of block ``name``; ``None`` for a rule that is not registered."""
    if name == SHARED:
        return param_table(SHARED_PARAMS)
    rule = rules.get(name)
    return None if rule is None else param_table(rule.params)


def render(text: str, rules: Mapping[str, type[Rule]] = RULES, docs: str = DOCS_RULES) -> str:
    """``text`` with every marked block regenerated (a block of an unregistered rule kept)."""

    def params_block(match: re.Match[str]) -> str:
        table = table_for(match["name"], rules)
        return match[0] if table is None else match[1] + table + match[4]

    text = _PARAMS_BLOCK.sub(params_block, text)
    return _CATALOGUE_BLOCK.sub(lambda m: m[1] + catalogue_table(rules, docs) + m[3], text)


def param_blocks(text: str) -> list[str]:
    """The names of the parameter blocks in ``text``, in order."""
    return [match["name"] for match in _PARAMS_BLOCK.finditer(text)]


def has_catalogue(text: str) -> bool:
    return _CATALOGUE_BLOCK.search(text) is not None


def missing_tables(text: str, rules: Mapping[str, type[Rule]] = RULES) -> list[str]:
    """Registered rules (and ``shared``) that ``text`` has no parameter block for."""
    present = set(param_blocks(text))
    return [name for name in (SHARED, *rules) if name not in present]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainsentry.rules.catalogue",
        description="Rewrite the generated rule tables of README.md and docs/rules.md.")
    parser.add_argument("--root", type=Path, default=Path("."),
                        help="the repository root (default: the current directory)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    problems = 0
    for relative in FILES:
        path = args.root / relative
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"catalogue: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return 2
        missing = missing_tables(text) if relative == DOCS_RULES else []
        if missing:
            problems += 1
            print(f"catalogue: {path} has no parameter table for {', '.join(missing)}: add "
                  "<!-- rule-params:NAME --> and <!-- /rule-params --> to its section",
                  file=sys.stderr)
        rendered = render(text)
        if rendered == text:
            continue
        if args.check:
            problems += 1
            print(f"catalogue: {path} is out of date (run python -m trainsentry.rules.catalogue)",
                  file=sys.stderr)
        else:
            path.write_text(rendered, encoding="utf-8")
            print(f"catalogue: rewrote {path}")
    return 1 if problems else 0

if __name__ == "__main__":
    sys.exit(main())
