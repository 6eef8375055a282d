"""The live slice, end to end: events in, the real sidecar process, alerts read from the topic."""

from __future__ import annotations

import signal
import subprocess
import sys

import msgpack
import pytest

from tests.sidecar_harness import (
    publish,
    read_alert_records,
    read_alerts,
    read_dead_letters,
    read_metrics,
    running_sidecar,
)
from tests.streams import interleave, log_lines, losses, replay_alerts, weights, write_config
from trainsentry.consumers.broker import free_port
from trainsentry.protocol import encode

pytestmark = pytest.mark.usefixtures("broker_binary")  # brokers of its own, or none reachable

# docs/rules.md, LossNotDecreasing, first vector: saved every 4 steps, first alert at step 12.
VECTOR = [0.3, 0.33, 0.31, 0.30, 0.28]


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainsentry.consumers.cli", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_alert_arrives_through_the_live_sidecar(bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    events = losses("run-a", VECTOR)
    with running_sidecar(bootstrap_servers, topics, config) as sidecar:
        publish(bootstrap_servers, topics, events)
        alerts = read_alerts(bootstrap_servers, topics, count=1)
        assert sidecar.stop() == 0, sidecar.stderr
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.trial, alert.rule, alert.rule_type, alert.mode, alert.step, alert.tensors) == (
        "run-a", "LossNotDecreasing", "LossNotDecreasing", "TRAIN", 12, ("loss",))
    assert alert.event_ts == events[3].ts
    assert alert == replay_alerts(config, events)[alert.id]  # live and replay agree, field for field


def test_sigterm_commits_and_a_restart_resumes_without_repeating(bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    first = losses("run-b", VECTOR)
    # The loss goes on not falling: next evaluations at 24 (vs 12) and 36 (vs 24).
    later = losses("run-b", [0.3, 0.3, 0.31, 0.32, 0.33, 0.34], start=20)
    with running_sidecar(bootstrap_servers, topics, config, group_id="resume") as sidecar:
        publish(bootstrap_servers, topics, first)
        assert len(read_alerts(bootstrap_servers, topics, count=1)) == 1
        assert sidecar.stop(signal.SIGTERM) == 0, sidecar.stderr
    publish(bootstrap_servers, topics, later)
    with running_sidecar(bootstrap_servers, topics, config, group_id="resume") as sidecar:
        alerts = read_alerts(bootstrap_servers, topics, count=3)
        assert sidecar.stop(signal.SIGINT) == 0, sidecar.stderr
    expected = replay_alerts(config, first + later)
    assert {a.id: a for a in alerts} == expected
    # The restart rebuilt its windows from the partition without publishing the first alert again.
    assert sorted(a.step for a in read_alert_records(bootstrap_servers, topics)) == [12, 24, 36]


def test_bad_records_go_to_the_dead_letter_topic_and_the_stream_goes_on(
        bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    bad = [b"\xc1not msgpack", msgpack.packb({"v": 1, "type": "scalar", "trial": "run-c"}),
           encode({"v": 2, "type": "scalar"})]
    events = losses("run-c", VECTOR)
    with running_sidecar(bootstrap_servers, topics, config) as sidecar:
        publish(bootstrap_servers, topics, events[:2])
        publish(bootstrap_servers, topics, bad, key=b"run-c")
        publish(bootstrap_servers, topics, events[2:])
        alerts = read_alerts(bootstrap_servers, topics, count=1)
        letters = read_dead_letters(bootstrap_servers, topics, count=3)
        sidecar.stop()
    assert [a.step for a in alerts] == [12]
    assert sorted(letter["value"] for letter in letters) == sorted(bad)
    reasons = {letter["value"]: letter["reason"] for letter in letters}
    assert "not a msgpack record" in reasons[bad[0]]
    assert reasons[bad[1]].startswith("field 'ts': missing")
    assert "unsupported protocol version" in reasons[bad[2]]
    for letter in letters:
        assert letter["topic"] == topics.tensors and letter["key"] == b"run-c"
        assert letter["offset"] >= 2 and letter["partition"] in range(4)


def test_two_trials_and_workers_interleaved_with_weights_and_logs(bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    events = interleave(
        losses("run-d", VECTOR, worker="0"),
        losses("run-d", [0.5, 0.4, 0.3, 0.2, 0.1], worker="1"),  # falling: no alert for worker 1
        losses("run-e", [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
        weights("run-e", steps=6, frozen_after=3),
        log_lines("run-d", ["epoch 0 val_loss=0.5;", "noise", "val_loss=0.4; x", "val_loss=nan;"]),
    )
    expected = replay_alerts(config, events)
    with running_sidecar(bootstrap_servers, topics, config) as sidecar:
        publish(bootstrap_servers, topics, events)
        alerts = read_alerts(bootstrap_servers, topics, count=len(expected))
        metrics = read_metrics(bootstrap_servers, topics, timeout=5)
        sidecar.stop()
    assert {a.id: a for a in alerts} == expected
    assert {(a.trial, a.worker, a.rule_type) for a in alerts} >= {
        ("run-d", "0", "LossNotDecreasing"), ("run-e", "0", "LossNotDecreasing"),
        ("run-e", "0", "WeightUpdateRatio")}
    assert not any(a.trial == "run-d" and a.worker == "1" for a in alerts)
    assert [(m.name, m.step) for m in metrics] == [("val_loss", 0), ("val_loss", 1), ("val_loss", 2)]
    assert [m.value for m in metrics][:2] == [0.5, 0.4]


def test_record_then_replay_gives_the_live_alerts(bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    events = interleave(losses("run-f", VECTOR), losses("run-g", [2.0, 2.0, 2.0, 2.0]))
    with running_sidecar(bootstrap_servers, topics, config) as sidecar:
        publish(bootstrap_servers, topics, events)
        live = read_alerts(bootstrap_servers, topics, count=2)
        sidecar.stop()
    kafka = ["--bootstrap-servers", bootstrap_servers, "--topic-prefix", topics.prefix]
    recording = tmp_path / "run.msgpack"
    done = cli("record", *kafka, "--output", str(recording))
    assert done.returncode == 0, done.stderr
    from_file = tmp_path / "from-file.jsonl"
    done = cli("replay", "--input", str(recording), "--config", str(config), "--output", str(from_file))
    assert done.returncode == 0, done.stderr
    from_topics = tmp_path / "from-topics.jsonl"
    done = cli("replay", *kafka, "--trial", "run-g", "--config", str(config), "--output", str(from_topics))
    assert done.returncode == 0, done.stderr
    import json
    file_ids = {json.loads(line)["id"] for line in from_file.read_text().splitlines()}
    topic_alerts = [json.loads(line) for line in from_topics.read_text().splitlines()]
    assert file_ids == {a.id for a in live}
    assert {a["trial"] for a in topic_alerts} == {"run-g"}
    assert {a["id"] for a in topic_alerts} == {a.id for a in live if a.trial == "run-g"}


def test_tail_prints_one_line_per_alert(bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    with running_sidecar(bootstrap_servers, topics, config) as sidecar:
        publish(bootstrap_servers, topics, losses("run-h", VECTOR))
        done = cli("tail", "--bootstrap-servers", bootstrap_servers, "--topic-prefix", topics.prefix,
                   "--from", "beginning", "--max-alerts", "1")
        sidecar.stop()
    assert done.returncode == 0, done.stderr
    assert " WARNING LossNotDecreasing trial=run-h worker=0 TRAIN step 12 [loss]: " in done.stdout
    assert done.stdout.count("\n") == 1


def test_missing_config_is_one_line_and_exit_2(tmp_path) -> None:
    done = cli("run", "--config", str(tmp_path / "nope.toml"), "--bootstrap-servers", "127.0.0.1:1")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "nope.toml" in done.stderr and "Traceback" not in done.stderr


def test_bad_bootstrap_servers_is_one_line(tmp_path) -> None:
    config = write_config(tmp_path)
    done = cli("run", "--config", str(config), "--bootstrap-servers", "no-port-here")
    assert done.returncode == 2 and "--bootstrap-servers" in done.stderr and "Traceback" not in done.stderr
    done = cli("run", "--config", str(config), "--bootstrap-servers", f"127.0.0.1:{free_port()}")
    assert done.returncode == 1, done.stderr
    assert "cannot reach Kafka at" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0


def test_demo_shows_an_alert_that_came_through_the_live_broker() -> None:
    done = cli("demo", "--steps", "200", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ALERT LossNotDecreasing trial=demo-run" in done.stdout
    assert done.stdout.rstrip().endswith("broker stopped.")
    assert "Traceback" not in done.stderr


def test_replay_of_a_file_can_publish_its_alerts_to_a_topic(bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    events = losses("what-if", VECTOR)
    recording = tmp_path / "run.msgpack"
    recording.write_bytes(b"".join(encode(e) for e in events))
    done = cli("replay", "--input", str(recording), "--config", str(config),
               "--bootstrap-servers", bootstrap_servers, "--publish", topics.alerts)
    assert done.returncode == 0, done.stderr
    assert {a.id for a in read_alerts(bootstrap_servers, topics, count=1)} == set(
        replay_alerts(config, events))
    done = cli("replay", "--input", str(recording), "--config", str(config),
               "--bootstrap-servers", bootstrap_servers, "--output", "-")
    assert done.returncode == 2 and "not both" in done.stderr


def test_topics_with_different_partition_counts_are_refused(bootstrap_servers, tmp_path) -> None:
    import asyncio
    import uuid

    from trainsentry.consumers.broker import delete_topics, ensure_topics
    from trainsentry.protocol import Topics

    topics = Topics(f"t{uuid.uuid4().hex[:10]}")
    asyncio.run(ensure_topics(bootstrap_servers, [topics.logs], partitions=2))
    try:
        done = cli("run", "--config", str(write_config(tmp_path)), "--bootstrap-servers",
                   bootstrap_servers, "--topic-prefix", topics.prefix)
    finally:
        asyncio.run(delete_topics(bootstrap_servers, topics.all()))
    assert done.returncode == 1, done.stderr
    assert f"{topics.tensors} has 4 partitions and {topics.logs} has 2" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_sidecar_also_delivers_to_the_sinks_given_with_sink(bootstrap_servers, topics, tmp_path) -> None:
    import json

    config = write_config(tmp_path)
    tee = tmp_path / "tee.jsonl"
    with running_sidecar(bootstrap_servers, topics, config, extra_args=["--sink", f"jsonl:{tee}"]) as sidecar:
        publish(bootstrap_servers, topics, losses("run-t", VECTOR))
        alerts = read_alerts(bootstrap_servers, topics, count=1)
        assert sidecar.stop() == 0, sidecar.stderr
    assert [json.loads(line)["id"] for line in tee.read_text().splitlines()] == [a.id for a in alerts]
