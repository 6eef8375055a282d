"""Progress of long commands: shown on a terminal only, notices said once."""

from __future__ import annotations

import io
import subprocess
import sys

from tests.streams import log_lines, losses
from trainsentry.consumers.progress import CommandProgress, describe_position
from trainsentry.protocol import encode


def test_nothing_is_shown_off_a_terminal(capsys) -> None:
    stream = io.StringIO()
    with CommandProgress("replay", stream=stream) as progress:
        progress.add(events=10, alerts=1)
        progress.set_position(5, 10)
        progress.notice("trial 'a' ended")
        progress.notice("trial 'a' ended")
    assert stream.getvalue() == ""
    assert capsys.readouterr().err == "trainsentry: trial 'a' ended\n"


def test_on_a_terminal_the_line_shows_events_position_and_alerts() -> None:
    stream = io.StringIO()
    with CommandProgress("record", unit="offsets", stream=stream, enabled=True) as progress:
        progress.add(events=1234, alerts=2)
        progress.set_position(40, 80)
        progress.notice("said once")
        progress.notice("said once")
        progress._live.refresh()
    shown = stream.getvalue()
    assert "1,234 events" in shown and "2 alerts" in shown and "50%  40/80 offsets" in shown
    assert shown.count("said once") == 1


def test_pulled_counts_are_read_at_each_refresh() -> None:
    counts = {"events": 0}
    progress = CommandProgress("replay", events=lambda: counts["events"], enabled=False)
    counts["events"] = 7
    assert progress.events == 7


def test_positions_in_words() -> None:
    assert describe_position(0, None) == "0.0 MB"
    assert describe_position(10, 5, unit="steps") == "100%  10/5 steps"


def test_replay_piped_prints_only_its_summary_and_each_notice_once(tmp_path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text('[[rules]]\ntype = "LossNotDecreasing"\n\n[[metrics]]\nname = "val"\nregex = "val=(.*?);"\n\n'
                      '[objective]\nmetric = "val"\ntype = "Minimize"\n')
    events = losses("quiet", [1.0] * 8) + log_lines("quiet", ["no metric here"])
    recording = tmp_path / "run.msgpack"
    recording.write_bytes(b"".join(encode(e) for e in events))
    done = subprocess.run([sys.executable, "-m", "trainsentry.consumers.cli", "replay", "--input",
                           str(recording), "--config", str(config), "--output", str(tmp_path / "a.jsonl")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\x1b" not in done.stderr and "events/s" not in done.stderr
    assert done.stderr.count("never emitted") == 1
