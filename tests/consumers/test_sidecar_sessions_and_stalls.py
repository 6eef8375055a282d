"""The live sidecar with resumed runs and stalled workers: what it says, and what a replay says."""

from __future__ import annotations

import dataclasses
import time
import uuid

from tests.producers.kafka_records import read_records
from tests.sidecar_harness import publish, read_alerts, running_sidecar
from tests.streams import losses, replay_alerts, write_config
from trainsentry.protocol import ScalarEvent


def test_a_run_restarted_from_a_checkpoint_fires_its_rules_again_in_the_live_sidecar(
        bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path, {
        "TrainingJobName": "resumed", "RoleArn": "arn:aws:iam::1:role/r",
        "DebugRuleConfigurations": [{
            "RuleConfigurationName": "loss-stalled", "InstanceType": "ml.t3.medium",
            "RuleParameters": {"rule_to_invoke": "LossNotDecreasing", "num_steps": "8",
                               "severity": "error"}}]})
    # the first writer: the loss stops falling (step 16 against step 8); it dies after step 16
    first = [dataclasses.replace(e, session="writer-1") for e in
             losses("run-r", [0.3, 0.29, 0.28, 0.30, 0.31])]
    # restarted from step 8's checkpoint, it writes steps 8.. again, and the loss stalls again
    second = [dataclasses.replace(e, session="writer-2", ts=e.ts + 1000) for e in
              losses("run-r", [0.28, 0.30, 0.31, 0.32], start=8)]
    with running_sidecar(bootstrap_servers, topics, config) as sidecar:
        publish(bootstrap_servers, topics, first + second)
        alerts = read_alerts(bootstrap_servers, topics, count=2)
        assert sidecar.stop() == 0, sidecar.stderr
    expected = replay_alerts(config, first + second)
    assert {a.id: a for a in alerts} == expected
    # step 16 alerted in both sessions: the resumed run's alert is a new one, not a repeat
    assert sorted((a.step, a.severity) for a in alerts) == [(16, "error"), (16, "error")]
    assert len({a.id for a in alerts}) == 2
    # what was loaded and what was ignored, once each, at start-up
    assert "loaded rule 'loss-stalled' (LossNotDecreasing, severity error): " in sidecar.stderr
    assert sidecar.stderr.count("ignored (the configuration holds them") == 1
    assert "TrainingJobName, RoleArn, InstanceType of rule 'loss-stalled'" in sidecar.stderr


def test_a_stalled_worker_live_and_what_a_replay_of_the_same_records_sees(
        bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path, {"DebugRuleConfigurations": [{
        "RuleConfigurationName": "stalled",
        "RuleParameters": {"rule_to_invoke": "StalledTrainingRule", "threshold": "2",
                           "stop_training_on_fire": "True"}}]})
    trial = f"run-stall-{uuid.uuid4().hex[:6]}"

    def value(worker: str, step: int) -> ScalarEvent:
        return ScalarEvent(trial, time.time(), "TRAIN", step, "loss", 1.0, worker,
                           collections=("losses",), session=f"writer-{worker}")

    with running_sidecar(bootstrap_servers, topics, config) as sidecar:
        sidecar.wait_ready()
        publish(bootstrap_servers, topics, [value("a", 0), value("a", 1), value("b", 0)])
        for step in range(1, 9):  # worker b writes on for 4 s; worker a is silent
            time.sleep(0.5)
            publish(bootstrap_servers, topics, [value("b", step)])
        # then b stops too: only the live sidecar can see that stall
        alerts = read_alerts(bootstrap_servers, topics, count=2, timeout=30)
        assert sidecar.stop() == 0, sidecar.stderr
    live = {(a.worker, a.step): a for a in alerts}
    assert set(live) == {("a", 1), ("b", 8)}
    assert all(a.details["stop_training"] is True and a.mode == "GLOBAL" for a in alerts)
    assert live["a", 1].details["gap"] > 2.0
    # a replay of the same records sees a's stall (b's later events reveal it), with the same id
    records = [event for _, event in read_records(bootstrap_servers, topics.tensors, 11)]
    replayed = replay_alerts(config, records)
    assert [(a.worker, a.step) for a in replayed.values()] == [("a", 1)]
    assert set(replayed) == {live["a", 1].id}
