"""Operating the sidecar: scale-out in one group, hand-over after a crash, Prometheus metrics."""

from __future__ import annotations

import re
import time
import urllib.request

from tests.sidecar_harness import SidecarProcess, publish, read_alerts
from tests.streams import T0, interleave, losses, replay_alerts, weights, write_config
from trainsentry.consumers.broker import free_port
from trainsentry.protocol import LogEvent


def trial_streams(n: int, start: int, count: int) -> list:
    return interleave(*[losses(f"scale-{t}", [1.0 + 0.01 * ((i * 7 + t) % 5) for i in range(count)],
                               every=2, start=start) for t in range(n)])


def test_two_sidecars_share_the_trials_and_one_takes_over_when_the_other_dies(
        bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    first, second = trial_streams(8, 0, 30), trial_streams(8, 60, 30)
    expected = replay_alerts(config, first + second)
    a = SidecarProcess(bootstrap_servers, topics, config, group_id="scale").start()
    b = SidecarProcess(bootstrap_servers, topics, config, group_id="scale").start()
    try:
        a.wait_ready()
        b.wait_ready()
        publish(bootstrap_servers, topics, first)
        before = {x.id for x in expected.values() if x.step < 60}
        seen = read_alerts(bootstrap_servers, topics, count=len(before), timeout=60)
        assert {x.id for x in seen} == before
        # Both members own partitions once the group has settled.
        assert "assigned" in a.stderr and "assigned" in b.stderr
        b.kill()
        publish(bootstrap_servers, topics, second)
        alerts = read_alerts(bootstrap_servers, topics, count=len(expected), timeout=60)
        assert a.stop() == 0, a.stderr
    finally:
        for sidecar in (a, b):
            if sidecar.process.poll() is None:
                sidecar.kill()
    assert {x.id: x for x in alerts} == expected
    # The survivor rebuilt the dead member's windows from the partitions it gained.
    assert re.search(r"rebuilding state for [1-9]", a.stderr), a.stderr


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_prometheus_endpoint_reports_what_the_sidecar_did(bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    port = free_port()
    events = interleave(losses("prom", [0.3, 0.33, 0.31, 0.30, 0.28]), weights("prom", 4, 2))
    with SidecarProcess(bootstrap_servers, topics, config,
                        extra_args=["--metrics-port", str(port)]) as sidecar:
        sidecar.wait_ready()
        publish(bootstrap_servers, topics, events)
        publish(bootstrap_servers, topics, [b"\x00poison"], key=b"prom")
        read_alerts(bootstrap_servers, topics, count=3)
        deadline = time.monotonic() + 20
        samples = scrape(port)
        while samples.get(f'trainsentry_dead_letters_total{{topic="{topics.tensors}"}}', 0) < 1:
            assert time.monotonic() < deadline, samples
            time.sleep(0.2)
            samples = scrape(port)
        sidecar.stop()
    consumed = sum(v for k, v in samples.items() if k.startswith("trainsentry_events_consumed_total"))
    assert consumed == len(events) + 1
    assert samples['trainsentry_alerts_total{rule="LossNotDecreasing"}'] == 1
    assert samples['trainsentry_alerts_total{rule="WeightUpdateRatio"}'] == 2
    assert samples["trainsentry_state_bytes"] > 0
    assert samples["trainsentry_trials"] == 1
    assert samples["trainsentry_rebalances_total"] >= 1
    assert samples["trainsentry_rule_evaluation_seconds_count"] >= 1
    assert any(k.startswith("trainsentry_consumer_lag{") for k in samples)
    assert samples["trainsentry_late_events"] == 0 and samples["trainsentry_duplicate_events"] == 0


def test_an_ended_trial_releases_its_state(bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    port = free_port()
    events = interleave(losses("ending", [0.3, 0.33, 0.31, 0.30, 0.28]),
                        weights("ending", 4, 2, shape=(64, 64)))
    end = LogEvent("ending", T0 + 99, "stderr", "[trainsentry] command exited with code 0", 0,
                   final=True)
    with SidecarProcess(bootstrap_servers, topics, config,
                        extra_args=["--metrics-port", str(port),
                                    "--ended-trial-grace-seconds", "0.5"]) as sidecar:
        sidecar.wait_ready()
        publish(bootstrap_servers, topics, events)
        read_alerts(bootstrap_servers, topics, count=3)
        deadline = time.monotonic() + 20
        while scrape(port)["trainsentry_state_bytes"] < 64 * 64 * 4:  # the previous weights, at least
            assert time.monotonic() < deadline, sidecar.stderr
            time.sleep(0.2)
        assert scrape(port)["trainsentry_trials"] == 1
        publish(bootstrap_servers, topics, [end])
        while scrape(port)["trainsentry_trials"] != 0:
            assert time.monotonic() < deadline, sidecar.stderr
            time.sleep(0.2)
        assert scrape(port)["trainsentry_state_bytes"] < 64 * 64 * 4 / 4
        sidecar.stop()
    assert "trial 'ending' ended: state released" in sidecar.stderr
