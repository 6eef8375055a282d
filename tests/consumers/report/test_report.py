"""``trainsentry report`` over a known run: one self-contained file with its curves and alerts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from trainsentry.consumers.cli import main

from .known_run import TRIALS, write_known_run


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("report")
    replay, config = write_known_run(folder)
    output = folder / "report.html"
    assert main(["report", "--input", str(replay), "--config", str(config), "--output", str(output)]) == 0
    return output.read_text(encoding="utf-8")


def test_the_report_is_one_self_contained_file(report: str) -> None:
    assert "<script" not in report and "<link" not in report  # nothing to fetch, nothing to run
    sources = re.findall(r'src="([^"]*)"', report)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"url\(|https?://", report)


def test_each_trial_has_its_curves_timeline_statistics_and_alerts(report: str) -> None:
    for trial in TRIALS:
        section = report.split(f'data-trial="{trial}"', 1)[1].split("</section>", 1)[0]
        for picture in ("curves", "timeline", "layer-stats"):
            assert f'<img class="{picture}"' in section, (trial, picture)
        assert "loss did not decrease over 20 steps" in section
        assert "fc1.weight update ratio 0 &lt; small_threshold" in section
        assert "2 sent their end marker" in section


def test_the_ranking_configuration_and_skipped_input_are_told(report: str) -> None:
    ranking = report.split('id="objective"', 1)[1].split("</section>", 1)[0]
    assert ranking.index("run-b") < ranking.index("run-a")  # run-b's final loss is lower
    configuration = report.split('id="config"', 1)[1].split("</section>", 1)[0]
    assert "LossNotDecreasing" in configuration and "num_steps = 20" in configuration
    skipped = report.split('id="input"', 1)[1].split("</section>", 1)[0]
    assert re.search(r"invalid records or objects</td><td class=\"num\">1<", skipped)
    assert re.search(r"known-run\.msgpack: offset \d+: field &#x27;ts&#x27;: missing required field", skipped)


def test_one_trial_only(tmp_path: Path) -> None:
    replay, config = write_known_run(tmp_path)
    output = tmp_path / "one.html"
    assert main(["report", "--input", str(replay), "--config", str(config), "--output", str(output),
                 "--trial", "run-b"]) == 0
    html = output.read_text()
    assert 'data-trial="run-b"' in html and 'data-trial="run-a"' not in html
    assert re.search(r"events of other trials \(not asked for\)</td><td class=\"num\">[1-9]", html)


@pytest.mark.parametrize(("args", "says"), [
    (["--input", "/no/such.msgpack"], "--input: no such file: /no/such.msgpack"),
    (["--output", "/no/such/folder/r.html"], "--output: cannot write /no/such/folder/r.html"),
    (["--bootstrap-servers", "localhost:9092"], "not both"),
])
def test_bad_options_are_one_line(tmp_path: Path, capsys, args: list[str], says: str) -> None:
    replay, config = write_known_run(tmp_path)
    base = {"--input": str(replay), "--config": str(config), "--output": str(tmp_path / "r.html")}
    for option, value in zip(args[::2], args[1::2], strict=True):
        base[option] = value
    argv = ["report", *[item for pair in base.items() for item in pair]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and err.count("\n") == 1
