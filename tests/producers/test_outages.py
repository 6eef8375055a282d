"""The training loop goes on, at full speed, whatever happens to the broker."""

import logging
import subprocess
import sys
import time

import numpy as np
import pytest

from trainsentry.consumers.broker import EmbeddedBroker, free_port
from trainsentry.producers import SaveConfig, SenderSettings, TensorPublisher
from tests.producers.helpers import read_records

pytestmark = pytest.mark.integration

# Far above what a publish call costs (microseconds), far below any network timeout (seconds):
# a call that takes this long waited for the network, which it must never do.
NEVER_WAITS_S = 0.5


def training_loop(publisher: TensorPublisher, steps: int, on_step=lambda step: None) -> float:
    """Publish a loss and a weight tensor per step; the slowest publish call, in seconds."""
    weights = np.ones((32, 32), dtype=np.float32)
    slowest = 0.0
    for step in range(steps):
        on_step(step)
        started = time.perf_counter()
        publisher.scalar("loss", 1.0, step=step, collections=["losses"])
        publisher.tensor("fc1.weight", weights, step=step, collections=["weights"])
        slowest = max(slowest, time.perf_counter() - started)
        weights += 0.001
        if step % 50 == 0:
            time.sleep(0.005)  # the rest of a training step
    return slowest


def test_a_broker_that_is_down_from_the_start_costs_nothing_but_the_warning(caplog) -> None:
    caplog.set_level(logging.WARNING)
    settings = SenderSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", buffer_bytes=256 * 1024)
    publisher = TensorPublisher("down", settings=settings, save_config=SaveConfig(save_interval=1))

    slowest = training_loop(publisher, 2000)
    started = time.monotonic()
    publisher.close()

    assert slowest < NEVER_WAITS_S
    assert time.monotonic() - started < 1.0  # nothing was ever reachable: nothing to wait for
    stats = publisher.stats()
    assert stats.sent == 0 and stats.dropped > 0 and stats.lost == 4000
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("cannot reach Kafka" in m for m in warnings) == 1
    assert len(warnings) <= 5  # never once per step


def test_a_broker_that_disappears_mid_run_does_not_stop_training(caplog) -> None:
    caplog.set_level(logging.WARNING)
    broker = EmbeddedBroker().start()
    settings = SenderSettings(bootstrap_servers=broker.bootstrap_servers, buffer_bytes=256 * 1024,
                              request_timeout_s=1.0, close_timeout_s=1.0)
    publisher = TensorPublisher("vanishing", settings=settings, save_config=SaveConfig(save_interval=1))
    try:
        delivered_before = 0

        def outage(step: int) -> None:
            nonlocal delivered_before
            if step == 1000:
                assert publisher.flush(10.0), "the broker should have taken what was buffered"
                delivered_before = publisher.stats().sent
                broker.process.kill()  # a crash: no goodbye to the clients

        slowest = training_loop(publisher, 3000, outage)
        started = time.monotonic()
        publisher.close()
        closing = time.monotonic() - started
    finally:
        broker.stop()

    assert slowest < NEVER_WAITS_S
    assert closing < settings.close_timeout_s + 2.0
    stats = publisher.stats()
    assert delivered_before > 0 and stats.sent == delivered_before
    assert stats.sent + stats.lost == 6000  # every event accounted for, none silently
    assert stats.lost >= 4000                # the 2000 steps after the crash, all of them
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("events dropped" in m for m in warnings)
    assert len(warnings) <= 10


def test_interpreter_exit_delivers_what_is_buffered(tmp_path, bootstrap_servers: str, topics) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import sys\n"
        "from trainsentry.producers import SaveConfig, TensorPublisher\n"
        "pub = TensorPublisher('exiting', bootstrap_servers=sys.argv[1], topic_prefix=sys.argv[2],\n"
        "                      save_config=SaveConfig(save_interval=1))\n"
        "for step in range(500):\n"
        "    pub.scalar('loss', 1.0 / (step + 1), step=step, collections=['losses'])\n"
        "# no close(): the interpreter's exit flushes\n")
    subprocess.run([sys.executable, str(script), bootstrap_servers, topics.prefix], check=True, timeout=60)
    assert len(read_records(bootstrap_servers, topics.tensors, 500)) == 500


def test_interpreter_exit_does_not_wait_for_a_broker_that_is_not_there(tmp_path) -> None:
    script = tmp_path / "train.py"
    script.write_text(
        "import sys\n"
        "from trainsentry.producers import SaveConfig, TensorPublisher\n"
        "pub = TensorPublisher('exiting', bootstrap_servers=sys.argv[1], save_config=SaveConfig(save_interval=1))\n"
        "for step in range(500):\n"
        "    pub.scalar('loss', 1.0, step=step)\n")
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(script), f"127.0.0.1:{free_port()}"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "cannot reach Kafka" in result.stderr and "500 in total" in result.stderr
    assert time.monotonic() - started < 20  # the interpreter's own start-up is most of it
