"""Every reader of the topics skips and counts what it cannot read, and goes on.

Each topic is poisoned with garbage bytes, an alert whose ``details`` nest 1,020 deep, and (on the
input topics) valid events keyed wrongly or not at all; the valid record written after them must
still come out of ``tail``, ``record`` and ``replay --bootstrap-servers``.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.sidecar_harness import publish
from tests.streams import losses, replay_alerts, write_config
from trainsentry.protocol import AlertEvent, FileReadResult, encode, iter_file

VECTOR = [0.3, 0.33, 0.31, 0.30, 0.28]  # LossNotDecreasing alerts at step 12


def deep_alert(depth: int = 1020) -> bytes:
    """A valid-looking alert whose ``details`` are ``{"k": [[[...]]]}``, ``depth`` arrays deep."""
    alert = {"v": 1, "type": "alert", "trial": "poison", "ts": 1.0, "id": "deep", "rule": "r",
             "rule_type": "r", "mode": "TRAIN", "step": 1, "tensors": [], "message": "m",
             "event_ts": 1.0, "details": None}
    return encode(alert)[:-1] + b"\x81\xa1k" + b"\x91" * depth + b"\xc0"


POISON = [b"\xc1\xc1 garbage", deep_alert()]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainsentry.consumers.cli", *args],
                          capture_output=True, text=True, timeout=120)


def test_tail_skips_poison_on_the_alerts_topic_and_prints_the_next_alert(bootstrap_servers, topics) -> None:
    valid = AlertEvent(trial="run-1", ts=1.7e9, id="a1", rule="loss", rule_type="LossNotDecreasing",
                       mode="TRAIN", step=12, tensors=("loss",), message="stalled", details={},
                       event_ts=1.7e9)
    publish(bootstrap_servers, topics, POISON, topic=topics.alerts, key=b"run-1")
    publish(bootstrap_servers, topics, [encode(valid)], topic=topics.alerts, key=b"run-1")
    done = cli("tail", "--bootstrap-servers", bootstrap_servers, "--topic-prefix", topics.prefix,
               "--from", "beginning", "--no-follow", "--json")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == ["a1"]
    assert done.stderr.count("skipping") == 2 and "Traceback" not in done.stderr
    assert "nested deeper than" in done.stderr


def poison_the_input_topics(bootstrap_servers: str, topics, trial: str) -> list:
    """Poison on the tensors topic, then ``trial``'s valid losses; the valid events."""
    events = losses(trial, VECTOR)
    publish(bootstrap_servers, topics, POISON, key=trial.encode())
    publish(bootstrap_servers, topics, [encode(events[0])], key=None)          # not keyed
    publish(bootstrap_servers, topics, [encode(events[0])], key=b"someone-else")  # keyed wrongly
    publish(bootstrap_servers, topics, events)
    return events


def test_record_leaves_out_and_counts_what_is_not_an_input_event(bootstrap_servers, topics, tmp_path) -> None:
    events = poison_the_input_topics(bootstrap_servers, topics, "rec")
    recording = tmp_path / "run.msgpack"
    done = cli("record", "--bootstrap-servers", bootstrap_servers, "--topic-prefix", topics.prefix,
               "--output", str(recording))
    assert done.returncode == 0, done.stderr
    result = FileReadResult()
    with open(recording, "rb") as stream:
        assert list(iter_file(stream, result)) == events
    assert result.invalid == 0 and result.undecodable_at is None
    assert "left out 4 record(s) that were not valid input events" in done.stderr
    assert "Traceback" not in done.stderr


def test_topic_replay_dead_letters_the_poison_and_finds_the_alerts(bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    events = poison_the_input_topics(bootstrap_servers, topics, "rep")
    out = tmp_path / "alerts.jsonl"
    done = cli("replay", "--bootstrap-servers", bootstrap_servers, "--topic-prefix", topics.prefix,
               "--config", str(config), "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == list(
        replay_alerts(config, events))
    assert f"replayed {len(events)} events" in done.stderr and "4 invalid" in done.stderr
    assert "field 'key': missing" in done.stderr and "Traceback" not in done.stderr
