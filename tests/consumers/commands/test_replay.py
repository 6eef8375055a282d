"""``trainsentry replay`` over files: no broker, the same engine, every alert field as JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.streams import T0, log_lines, losses, replay_alerts, write_config
from trainsentry.protocol import encode, to_wire

ALERT_FIELDS = {"v", "type", "trial", "worker", "ts", "id", "rule", "rule_type", "mode", "step", "severity",
                "tensors", "message", "details", "event_ts"}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainsentry.consumers.cli", *args],
                          capture_output=True, text=True, timeout=60)


def write_events(path: Path, events, extra: bytes = b"") -> Path:
    path.write_bytes(b"".join(encode(e) for e in events) + extra)
    return path


def test_replay_writes_every_alert_field_and_matches_the_engine(tmp_path) -> None:
    config = write_config(tmp_path)
    events = losses("r1", [0.3, 0.33, 0.31, 0.30, 0.28, float("nan"), 0.5, 0.6])
    recording = write_events(tmp_path / "run.msgpack", events)
    out = tmp_path / "alerts.jsonl"
    done = cli("replay", "--input", str(recording), "--config", str(config), "--output", str(out))
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    expected = replay_alerts(config, events)
    assert [line["id"] for line in lines] == list(expected)
    for line in lines:
        assert set(line) == ALERT_FIELDS
        wire = to_wire(expected[line["id"]])
        assert line["step"] == wire["step"] and line["details"].keys() == wire["details"].keys()
    assert f"replayed {len(events)} events" in done.stderr


def test_several_files_invalid_objects_and_undecodable_bytes(tmp_path) -> None:
    config = write_config(tmp_path)
    events = losses("r2", [0.3, 0.33, 0.31, 0.30, 0.28])
    bad_object = encode({"v": 1, "type": "scalar", "trial": "r2", "ts": T0, "mode": "TRAIN",
                         "step": -4, "name": "loss", "value": 1.0})
    first = tmp_path / "a.msgpack"
    first.write_bytes(encode(events[0]) + bad_object + encode(events[1]))
    # The second file ends in bytes that are not msgpack: what came before them is kept.
    second = write_events(tmp_path / "b.msgpack", events[2:], extra=b"\xc1\xc1\xc1")
    out = tmp_path / "alerts.jsonl"
    done = cli("replay", "--input", str(first), "--input", str(second), "--config", str(config),
               "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["step"] for line in out.read_text().splitlines()] == [12]
    assert "1 invalid" in done.stderr and "field 'step'" in done.stderr
    offset = second.stat().st_size - 3
    assert f"{second}: undecodable bytes at offset {offset}" in done.stderr


def test_trial_and_time_filters(tmp_path) -> None:
    config = write_config(tmp_path)
    events = losses("keep", [1.0] * 6) + losses("drop", [1.0] * 6)
    recording = write_events(tmp_path / "run.msgpack", events)
    out = tmp_path / "alerts.jsonl"
    done = cli("replay", "--input", str(recording), "--config", str(config), "--output", str(out),
               "--trial", "keep", "--until", str(T0 + 12))
    assert done.returncode == 0, done.stderr
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(a["trial"], a["step"]) for a in alerts] == [("keep", 12)]  # step 20 is after --until
    assert "filtered out" in done.stderr


def test_objective_ranking_is_printed(tmp_path) -> None:
    config = tmp_path / "rules.toml"
    config.write_text('[[metrics]]\nname = "val"\nregex = "val=(.*?);"\n\n'
                      '[objective]\nmetric = "val"\ntype = "Minimize"\n')
    events = (log_lines("good", ["val=0.9;", "val=0.2;", "val=0.3;"])
              + log_lines("bad", ["val=0.8;", "val=0.7;"])
              + log_lines("silent", ["nothing here"]))
    recording = write_events(tmp_path / "run.msgpack", events)
    done = cli("replay", "--input", str(recording), "--config", str(config), "--output", "-")
    assert done.returncode == 0, done.stderr
    ranking = [line for line in done.stderr.splitlines() if line.startswith("trainsentry:   ")]
    assert ranking == [
        "trainsentry:   1. good: final 0.3 (step 2), best 0.2 (step 1)",
        "trainsentry:   2. bad: final 0.7 (step 1), best 0.7 (step 1)",
        "trainsentry:   silent: never emitted val",
    ]


def test_configuration_errors_are_one_line_exit_2(tmp_path) -> None:
    recording = write_events(tmp_path / "run.msgpack", losses("x", [1.0]))
    config = tmp_path / "rules.toml"
    config.write_text('[[rules]]\ntype = "LossNotDecreasing"\nmin_difference = 3\n')
    done = cli("replay", "--input", str(recording), "--config", str(config), "--output", "-")
    assert done.returncode == 2
    assert "min_difference" in done.stderr and "LossNotDecreasing" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_missing_input_file(tmp_path) -> None:
    config = write_config(tmp_path)
    done = cli("replay", "--input", str(tmp_path / "absent.msgpack"), "--config", str(config),
               "--output", "-")
    assert done.returncode == 2 and "no such file" in done.stderr and "Traceback" not in done.stderr


def test_a_metrics_port_in_use_is_one_line_exit_2(tmp_path) -> None:
    import socket
    config = write_config(tmp_path)
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = cli("run", "--config", str(config), "--bootstrap-servers", "127.0.0.1:1",
                   "--metrics-port", str(port))
    assert done.returncode == 2, done.stderr
    assert f"--metrics-port: cannot listen on port {port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_replay_of_files_runs_without_aiokafka(tmp_path) -> None:
    config = write_config(tmp_path)
    events = losses("no-kafka", [0.3, 0.33, 0.31, 0.30, 0.28, 0.3, 0.31])
    recording = write_events(tmp_path / "run.msgpack", events)
    out = tmp_path / "alerts.jsonl"
    script = (
        "import sys\n"
        "sys.modules['aiokafka'] = None  # any import of it now fails\n"
        "from trainsentry.consumers.cli import main\n"
        "code = main(sys.argv[1:])\n"
        "assert sys.modules['aiokafka'] is None\n"
        "sys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", script, "replay", "--input", str(recording),
                           "--config", str(config), "--output", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == list(
        replay_alerts(config, events))


def test_alerts_also_go_to_the_extra_sinks(tmp_path) -> None:
    config = write_config(tmp_path)
    events = losses("tee", [0.3, 0.33, 0.31, 0.30, 0.28])
    recording = write_events(tmp_path / "run.msgpack", events)
    tee = tmp_path / "tee.jsonl"
    done = cli("replay", "--input", str(recording), "--config", str(config), "--output", "-",
               "--sink", f"jsonl:{tee}", "--sink", "console")
    assert done.returncode == 0, done.stderr
    expected = list(replay_alerts(config, events))
    assert [json.loads(line)["id"] for line in tee.read_text().splitlines()] == expected
    json_lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    text_lines = [line for line in done.stdout.splitlines() if line.startswith("ALERT")]
    assert [json.loads(line)["id"] for line in json_lines] == expected and len(text_lines) == len(expected)


def test_an_unknown_sink_or_unwritable_output_is_one_line_exit_2(tmp_path) -> None:
    config = write_config(tmp_path)
    recording = write_events(tmp_path / "run.msgpack", losses("x", [1.0]))
    done = cli("replay", "--input", str(recording), "--config", str(config), "--output", "-",
               "--sink", "pigeon:coop")
    assert done.returncode == 2 and "--sink: unknown sink 'pigeon'" in done.stderr
    assert done.stderr.count("\n") == 1
    done = cli("replay", "--input", str(recording), "--config", str(config), "--output",
               str(tmp_path / "missing" / "alerts.jsonl"))
    assert done.returncode == 2 and "--output: cannot write" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
