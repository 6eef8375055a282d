"""The rule tables of README.md and docs/rules.md agree with the rules' declared parameters.

The tables are generated (``python -m trainsentry.rules.catalogue``); these tests regenerate them in
memory and compare, and require a table and a section in docs/rules.md for every registered rule.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

from trainsentry.rules import catalogue
from trainsentry.rules.base import SHARED_PARAMS, Param
from trainsentry.rules.params import number
from trainsentry.rules.registry import RULES

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / catalogue.DOCS_RULES
HOW_TO_FIX = "run `python -m trainsentry.rules.catalogue` from the repository root"

_NUMBER = (r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
           r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|\d+")
# "the four built-in rules", "four of SageMaker Debugger's built-in rules", "these four rules".
_RULE_COUNT = re.compile(
    rf"\b(?:{_NUMBER})\b(?:\s+[\w'-]+){{0,3}}?\s+built-in\s+rules\b"
    rf"|\b(?:the|all|these|its|our)\s+(?:{_NUMBER})\s+rules\b", re.I)


def _stale(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    rendered = catalogue.render(text)
    diff = difflib.unified_diff(text.splitlines(), rendered.splitlines(), "as written",
                                "from the code", lineterm="", n=1)
    return "\n".join(list(diff)[:40])


@pytest.mark.parametrize("path", [README, DOCS], ids=lambda p: p.name)
def test_generated_tables_match_the_code(path: Path) -> None:
    stale = _stale(path)
    assert not stale, f"{path.name}: rule tables disagree with the code; {HOW_TO_FIX}\n{stale}"


def test_readme_has_the_catalogue() -> None:
    assert catalogue.has_catalogue(README.read_text(encoding="utf-8")), (
        "README.md lost its <!-- rule-catalogue --> ... <!-- /rule-catalogue --> block")


def test_docs_have_a_parameter_table_for_every_registered_rule() -> None:
    missing = catalogue.missing_tables(DOCS.read_text(encoding="utf-8"))
    assert not missing, (
        f"docs/rules.md has no parameter table for {', '.join(missing)}: add "
        "<!-- rule-params:NAME --> and <!-- /rule-params --> to the rule's section, then "
        + HOW_TO_FIX)


def test_docs_have_a_section_for_every_registered_rule() -> None:
    """The catalogue links to docs/rules.md#<rule>: each rule needs a heading of its own name."""
    headings = {catalogue.anchor(line.lstrip("#")) for line in
                DOCS.read_text(encoding="utf-8").splitlines() if re.match(r"#{2,3} ", line)}
    missing = [rule for rule in RULES if catalogue.anchor(rule) not in headings]
    assert not missing, f"docs/rules.md has no '## NAME' or '### NAME' heading for {missing}"


@pytest.mark.parametrize("path", [README, DOCS], ids=lambda p: p.name)
def test_no_hard_coded_count_of_rules(path: Path) -> None:
    found = [m[0] for m in _RULE_COUNT.finditer(path.read_text(encoding="utf-8"))]
    assert not found, f"{path.name} counts the rules ({found}); the catalogue grows: say it without a number"


# --- the generator itself ---------------------------------------------------------------------

def test_every_declared_parameter_is_a_row() -> None:
    for rule_type, rule in RULES.items():
        rows = catalogue.table_for(rule_type).splitlines()[2:]
        assert [row.split("`")[1] for row in rows] == list(rule.params), rule_type
    assert catalogue.table_for(catalogue.SHARED).count("\n") == 2 + len(SHARED_PARAMS)


def test_a_changed_default_makes_the_table_stale() -> None:
    rule_type, rule = next(iter(RULES.items()))
    text = f"<!-- rule-params:{rule_type} -->\n{catalogue.table_for(rule_type)}<!-- /rule-params -->\n"
    assert catalogue.render(text) == text
    name, param = next(iter(rule.params.items()))
    changed = {rule_type: type("Changed", (rule,), {
        "params": {**rule.params, name: Param(param.parse, "something else", param.doc)}})}
    assert catalogue.render(text, changed) != text


def test_a_block_of_an_unregistered_rule_is_kept_and_an_unknown_rule_is_missing() -> None:
    text = "<!-- rule-params:NotYetARule -->\nhand-written\n<!-- /rule-params -->\n"
    assert catalogue.render(text) == text
    assert catalogue.missing_tables(text) == [catalogue.SHARED, *RULES]


def test_pipes_are_escaped_in_cells() -> None:
    table = catalogue.param_table({"ratio": Param(number(), 0.1, "|a - b| / |b|")})
    assert table.splitlines()[2] == r"| `ratio` | `0.1` | \|a - b\| / \|b\| |"


def test_main_checks_and_rewrites(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    blocks = "".join(f"## {name}\n<!-- rule-params:{name} -->\nold\n<!-- /rule-params -->\n"
                     for name in (catalogue.SHARED, *RULES))
    (tmp_path / catalogue.DOCS_RULES).write_text(blocks, encoding="utf-8")
    (tmp_path / "README.md").write_text("<!-- rule-catalogue -->\n<!-- /rule-catalogue -->\n",
                                        encoding="utf-8")
    assert catalogue.main(["--root", str(tmp_path), "--check"]) == 1
    assert "old" in (tmp_path / catalogue.DOCS_RULES).read_text(encoding="utf-8")
    assert catalogue.main(["--root", str(tmp_path)]) == 0
    assert catalogue.main(["--root", str(tmp_path), "--check"]) == 0
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert all(f"[{rule}](docs/rules.md#{rule.lower()})" in readme for rule in RULES)
