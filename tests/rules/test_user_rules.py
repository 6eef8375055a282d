"""Rules written by users: named by import path or entry point, checked at load, run like built-ins."""

from __future__ import annotations

import json
import math
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.rules.events import T0, alerts, tensor
from trainsentry.consumers.engine import Engine
from trainsentry.protocol import AlertEvent, decode, encode
from trainsentry.rules.base import ConfigError
from trainsentry.rules.config import parse_config
from trainsentry.rules.user_rules import ENTRY_POINT_GROUP

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SPIKE = "gradient_spike:GradientSpike"


@pytest.fixture
def examples_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    yield
    sys.modules.pop("gradient_spike", None)


def gradients(norms, name="fc1.weight.grad", **fields):
    """One gradient per step whose L2 norm is each of ``norms``."""
    return [tensor(name, step, [norm, 0.0], collections=("gradients",), **fields)
            for step, norm in enumerate(norms)]


def test_the_readme_example_fires_on_a_spike_in_both_formats(examples_importable):
    toml = parse_config(f'[[rules]]\ntype = "{SPIKE}"\nname = "spike"\nfactor = 4\nwindow = 3\n')
    sagemaker = parse_config(json.dumps([{"RuleConfigurationName": "spike", "RuleParameters": {
        "rule_to_invoke": SPIKE, "factor": "4", "window": "3"}}]))
    assert toml == sagemaker
    events = gradients([1.0, 1.1, 0.9, 1.0, 5.0, 1.0, math.nan, 1.0])
    found = alerts(Engine(toml), events)
    assert [(a.rule, a.rule_type, a.mode, a.step, a.severity) for a in found] == [
        ("spike", SPIKE, "TRAIN", 4, "warning")]
    assert found[0].tensors == ("fc1.weight.grad",) and found[0].details["norm"] == 5.0
    assert isinstance(decode(encode(found[0])), AlertEvent)
    # the engine's guarantees: EVAL gradients are not its business, a late step never reaches it
    late = gradients([1.0, 1.0, 1.0, 1.0], mode="EVAL") + [tensor("fc1.weight.grad", 2, [99.0],
                                                                  collections=("gradients",))]
    assert alerts(Engine(toml), gradients([1.0] * 4) + late) == []


def test_parameters_of_a_user_rule_are_checked_at_load(examples_importable):
    with pytest.raises(ConfigError, match=r"rule 'spike' \(gradient_spike:GradientSpike\): "
                                          r"parameter 'factor': must be > 1"):
        parse_config(f'[[rules]]\ntype = "{SPIKE}"\nname = "spike"\nfactor = 0.5\n')
    with pytest.raises(ConfigError, match="parameter 'windows': unknown parameter"):
        parse_config(f'[[rules]]\ntype = "{SPIKE}"\nwindows = 3\n')
    config = parse_config(f'[[rules]]\ntype = "{SPIKE}"\nseverity = "error"\nstop_at_first = true\n')
    assert config.rules[0].params["severity"] == "error" and config.rules[0].build().stop_at_first


@pytest.mark.parametrize("rule_type, problem", [
    ("no_such_module_here:Rule", "cannot import 'no_such_module_here'"),
    ("gradient_spike:Nothing", "'gradient_spike' has no 'Nothing'"),
    ("gradient_spike:TensorSelection", "is not a rule"),
    ("gradient_spike:", "is not an import path"),
    ("trainsentry.rules.clocked:ClockedRule", "does not implement"),
])
def test_what_cannot_be_a_rule_is_one_line_naming_it(examples_importable, rule_type, problem):
    with pytest.raises(ConfigError) as error:
        parse_config(f'[[rules]]\ntype = "{rule_type}"\nname = "mine"\n')
    assert problem in str(error.value) and "'mine'" in str(error.value)
    assert "\n" not in str(error.value)


def test_a_module_that_raises_while_imported_or_a_rule_that_raises_when_built(tmp_path, monkeypatch):
    (tmp_path / "unimportable_rules.py").write_text("raise RuntimeError('no GPU here')\n")
    (tmp_path / "picky_rules.py").write_text(textwrap.dedent("""
        from trainsentry.rules import Rule

        class Picky(Rule):
            def __init__(self, name=None, **values):
                super().__init__(name, **values)
                raise KeyError("needs a license file")

            def selects(self, name, collections):
                return True

            def observe(self, state, obs):
                return None
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="importing 'unimportable_rules' raised RuntimeError: no GPU"):
        parse_config('[[rules]]\ntype = "unimportable_rules:Anything"\n')
    with pytest.raises(ConfigError, match=r"rule 'picky_rules:Picky' \(picky_rules:Picky\): cannot "
                                          r"be loaded: KeyError: 'needs a license file'"):
        parse_config('[[rules]]\ntype = "picky_rules:Picky"\n')
    sys.modules.pop("picky_rules", None)


def test_a_rule_registered_as_an_entry_point(tmp_path, monkeypatch):
    """An installed package registering the rule under the group trainsentry.rules."""
    (tmp_path / "spike_package.py").write_text((EXAMPLES / "gradient_spike.py").read_text())
    info = tmp_path / "spike_package-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: spike-package\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nGradientSpike = spike_package:GradientSpike\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = parse_config('[[rules]]\ntype = "GradientSpike"\nwindow = 2\n')
    assert config.rules[0].rule_type == "GradientSpike"
    found = alerts(Engine(config), gradients([1.0, 1.0, 50.0]))
    assert [(a.rule_type, a.step) for a in found] == [("GradientSpike", 2)]
    # a near miss of an entry-point name is suggested too
    with pytest.raises(ConfigError, match="did you mean 'GradientSpike'"):
        parse_config('[[rules]]\ntype = "GradientSpikes"\n')
    sys.modules.pop("spike_package", None)


def test_the_example_rule_takes_every_protocol_input_without_raising(examples_importable):
    """Every dtype and shape the protocol carries, as the sample user rule of the property test."""
    import warnings

    from tests.rules.routed import feed
    from trainsentry.protocol import DTYPES
    from trainsentry.rules.registry import build_rule
    from trainsentry.rules.rule_run import RuleRun

    run = RuleRun(build_rule(SPIKE, "spike", {"window": 1, "factor": 1.5}))
    step = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in sorted(DTYPES):
            for shape in ((), (0,), (3,), (2, 0, 2), (2, 3)):
                info = np.finfo(dtype) if np.dtype(dtype).kind == "f" else None
                values = np.full(shape, info.max if info else 1, dtype=dtype)
                if info is not None and values.size:
                    values.reshape(-1)[0] = np.nan if step % 2 else np.inf
                feed(run, "g", step, data=values, collections=("gradients",))
                feed(run, "g", step + 1, reductions={"l2": 1.0}, collections=("gradients",))
                step += 2
    assert run.rule.skipped["no elements"] > 0
    assert T0  # the builders' clock, unused here


def test_the_readme_shows_the_example_rule_as_it_is():
    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme[readme.index("### A rule of your own"):]
    shown = section[section.index("```python\n") + len("```python\n"):]
    shown = shown[:shown.index("```")]
    code = (EXAMPLES / "gradient_spike.py").read_text()
    code = code[code.index('"""', 3) + 3:].lstrip("\n")  # after the module's docstring
    assert shown == code
    assert len(code.splitlines()) <= 45
