"""``replay --input`` over files built to hurt: it reports what it refused and replays the rest."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

from tests.streams import losses, replay_alerts, write_config
from trainsentry.protocol import encode

VECTOR = [0.3, 0.33, 0.31, 0.30, 0.28]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainsentry.consumers.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_a_zero_size_tensor_with_huge_dimensions_is_set_aside_not_a_traceback(tmp_path) -> None:
    config = write_config(tmp_path)
    events = losses("z", VECTOR)
    zero = {"v": 1, "type": "tensor", "trial": "z", "ts": 1.0, "mode": "TRAIN", "step": 1,
            "name": "fc1.weight", "collections": ["weights"], "dtype": "float32",
            "shape": [0] + [2**31 - 1] * 31, "data": b""}
    recording = tmp_path / "run.msgpack"
    recording.write_bytes(encode(events[0]) + encode(zero) + b"".join(encode(e) for e in events[1:]))
    out = tmp_path / "alerts.jsonl"
    done = cli("replay", "--input", str(recording), "--config", str(config), "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "1 invalid" in done.stderr and "evaluation failed: ValueError" in done.stderr
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == list(
        replay_alerts(config, events))


def test_an_object_of_sixteen_million_empty_arrays_is_refused_and_the_rest_replayed(tmp_path) -> None:
    config = write_config(tmp_path)
    events = losses("e", VECTOR)
    count = 16 * 1024 * 1024
    junk = encode({**{"v": 1, "type": "scalar", "trial": "e", "ts": 1.0, "mode": "TRAIN", "step": 0,
                      "name": "loss", "value": 0.5}, "junk": None})[:-1]
    junk += b"\xdd" + struct.pack(">I", count) + b"\x90" * count
    recording = tmp_path / "run.msgpack"
    recording.write_bytes(junk + b"".join(encode(e) for e in events))
    out = tmp_path / "alerts.jsonl"
    done = cli("replay", "--input", str(recording), "--config", str(config), "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert "1 invalid" in done.stderr and "more than 100000 values" in done.stderr
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == list(
        replay_alerts(config, events))
