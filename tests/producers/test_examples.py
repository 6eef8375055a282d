"""The examples, end to end: real training, the real broker, the live sidecar, the right alerts."""

import importlib.util
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from tests.producers.kafka_records import read_records  # noqa: E402
from tests.sidecar_harness import read_alerts, read_metrics, running_sidecar  # noqa: E402
from trainsentry.consumers.engine import Engine  # noqa: E402
from trainsentry.rules.config import load_config  # noqa: E402

pytestmark = pytest.mark.torch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RULES = EXAMPLES / "rules.toml"
STEPS = 80  # enough for every variant to trip its rule; few, to keep the test short


def load_example():
    spec = importlib.util.spec_from_file_location("train_digits", EXAMPLES / "train_digits.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# What makes each alert of a variant's own rule the right one: the tensor it names, or the check.
REASONS = {
    "frozen": lambda a: a.tensors == ("fc1.weight",) and a.details["ratio"] == 0.0,
    "tanh-saturated": lambda a: a.tensors == ("tanh.tanh_input",),
    "poor-init": lambda a: "variance spread" in a.message,
    "stuck-loss": lambda a: a.tensors == ("loss",),
    "nan-lr": lambda a: "NaN" in a.message and a.severity == "error",
    "vanishing-gradient": lambda a: all(name.endswith(".grad") for name in a.tensors)
    and a.tensors[0].startswith("body."),
    "dead-relu": lambda a: a.tensors == ("relu2.relu_input",),
    "overfit": lambda a: a.tensors == ("loss",) and a.mode == "EVAL",
    "class-imbalance": lambda a: a.message.startswith("class imbalance") and a.mode == "EVAL",
}


def test_each_variant_trips_exactly_its_rule_in_the_live_sidecar(bootstrap_servers: str, topics) -> None:
    digits = load_example()
    trials = {variant: f"digits-{variant}-{uuid.uuid4().hex[:6]}" for variant in digits.VARIANTS}
    sent = 0
    with running_sidecar(bootstrap_servers, topics, RULES) as sidecar:
        sidecar.wait_ready()
        for variant, trial in trials.items():
            with digits.make_hook(trial, bootstrap_servers, topics.prefix) as hook:
                digits.train(variant, hook, steps=STEPS, log=lambda line: None)
            assert hook.stats().lost == 0
            sent += hook.stats().sent
        # What the sidecar must say is what the engine says of the same records, alert for alert.
        records = read_records(bootstrap_servers, topics.tensors, sent)
        assert len(records) == sent
        expected = [e for e in Engine(load_config(RULES)).process_many([e for _, e in records])
                    if e.type == "alert"]
        alerts = read_alerts(bootstrap_servers, topics, count=len(expected), timeout=30)

    assert sorted(a.id for a in alerts) == sorted(a.id for a in expected)
    assert {a.severity for a in alerts} <= {"warning", "error"}
    for variant, trial in trials.items():
        fired = [a for a in alerts if a.trial == trial]
        rule = digits.EXPECTED_RULE[variant]
        if rule is None:
            assert not fired, variant
            continue
        must = {rule} | digits.ALSO_TRIPS.get(variant, set())
        assert must <= {a.rule_type for a in fired} <= must | digits.MAY_TRIP.get(variant, set()), variant
        assert all(REASONS[variant](a) for a in fired if a.rule_type == rule), variant


def test_a_tapped_run_stops_itself_at_the_first_alert(bootstrap_servers: str, topics) -> None:
    trial = f"digits-tapped-{uuid.uuid4().hex[:6]}"
    command = [sys.executable, "-m", "trainsentry.consumers.cli", "tap", "--trial", trial,
               "--bootstrap-servers", bootstrap_servers, "--topic-prefix", topics.prefix, "--",
               sys.executable, str(EXAMPLES / "train_digits.py"), "--variant", "frozen",
               "--steps", "2000", "--stop-on-alert"]
    with running_sidecar(bootstrap_servers, topics, RULES) as sidecar:
        sidecar.wait_ready()
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        metrics = [m for m in read_metrics(bootstrap_servers, topics, timeout=5) if m.trial == trial]

    assert result.returncode == 3, result.stderr  # the script's "stopped by an alert"
    stopped = [line for line in result.stdout.splitlines() if line.startswith("stopping at step")]
    assert stopped and "fc1.weight update ratio 0" in stopped[0]
    assert int(stopped[0].split()[3].rstrip(":")) < 1999
    # the tap's log lines became metrics in the sidecar, under the same trial as the hook's tensors
    assert {m.name for m in metrics} >= {"train_loss"}
