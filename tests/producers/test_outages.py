"""The training loop goes on, at full speed, whatever happens to the broker.

No assertion here measures time (speed is the benchmark harness's business). That no publish call
and no close() waits for the network is shown by what they return while the network cannot
answer: a call that waited for a broker that never comes back would never return, and
pytest-timeout turns such a hang into a failure.
"""

import logging
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import pytest

from tests.producers.kafka_records import read_records
from trainsentry.consumers.broker import EmbeddedBroker, free_port
from trainsentry.producers import SaveConfig, SenderSettings, TensorPublisher

pytestmark = pytest.mark.usefixtures("broker_binary")  # brokers of its own, or none reachable

# Longer than pytest-timeout gives a test: a close() that waited for its deadline would hang.
NEVER_REACHED_S = 3600.0


def training_loop(publisher: TensorPublisher, steps: int,
                  on_step: Callable[[int], None] = lambda step: None) -> list[tuple[object, object]]:
    """Publish a loss and a weight tensor per step; what each pair of publish calls returned."""
    weights = np.ones((32, 32), dtype=np.float32)
    returned = []
    for step in range(steps):
        on_step(step)
        returned.append((publisher.scalar("loss", 1.0, step=step, collections=["losses"]),
                         publisher.tensor("fc1.weight", weights, step=step, collections=["weights"])))
        weights += 0.001
        if step % 50 == 0:
            time.sleep(0.005)  # the rest of a training step
    return returned


def all_bools(returned: list[tuple[object, object]]) -> bool:
    return all(type(value) is bool for pair in returned for value in pair)


def test_a_broker_that_is_down_from_the_start_costs_nothing_but_the_warning(caplog) -> None:
    caplog.set_level(logging.WARNING)
    # A close timeout no test run reaches: close() must not wait for it when nothing is reachable.
    settings = SenderSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", buffer_bytes=256 * 1024,
                              close_timeout_s=NEVER_REACHED_S)
    publisher = TensorPublisher("down", settings=settings, save_config=SaveConfig(save_interval=1))
    seen_by_the_loop = []

    returned = training_loop(publisher, 2000, lambda step: seen_by_the_loop.append(publisher.stats()))
    publisher.close()  # returns: nothing was ever reachable, nothing to wait for

    # Every call returned a verdict while no broker ever answered: none waited for the network,
    # not even once the buffer was full (drops were counted instead).
    assert len(returned) == 2000 and all_bools(returned)
    assert all(s.sent == 0 and not s.connected for s in seen_by_the_loop)
    stats = publisher.stats()
    assert stats.sent == 0 and stats.dropped > 0 and stats.lost == 4000
    assert stats.buffered_bytes == 0 and not stats.connected  # close() gave everything up
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("cannot reach Kafka" in m for m in warnings) == 1
    assert len(warnings) <= 5  # never once per step


def test_a_broker_that_disappears_mid_run_does_not_stop_training(caplog) -> None:
    caplog.set_level(logging.WARNING)
    broker = EmbeddedBroker().start()
    settings = SenderSettings(bootstrap_servers=broker.bootstrap_servers, buffer_bytes=256 * 1024,
                              request_timeout_ms=1000, close_timeout_s=1.0)
    publisher = TensorPublisher("vanishing", settings=settings, save_config=SaveConfig(save_interval=1))
    try:
        delivered_before = 0

        def outage(step: int) -> None:
            nonlocal delivered_before
            if step == 1000:
                assert publisher.flush(10.0), "the broker should have taken what was buffered"
                delivered_before = publisher.stats().sent
                broker.process.kill()  # a crash: no goodbye to the clients

        returned = training_loop(publisher, 3000, outage)
        publisher.close()
    finally:
        broker.stop()

    # Every call returned a verdict, also the 2000 steps' worth made while the broker was dead.
    assert len(returned) == 3000 and all_bools(returned)
    stats = publisher.stats()
    # close() stopped the producer and settled every event (the unacknowledged count as lost only
    # once the sender has stopped), although the broker never answered it.
    assert not stats.connected and stats.buffered_bytes == 0
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
        "from trainsentry.producers import SaveConfig, SenderSettings, TensorPublisher\n"
        "settings = SenderSettings(close_timeout_s=float(sys.argv[2]))\n"
        "pub = TensorPublisher('exiting', bootstrap_servers=sys.argv[1], settings=settings,\n"
        "                      save_config=SaveConfig(save_interval=1))\n"
        "for step in range(500):\n"
        "    pub.scalar('loss', 1.0, step=step)\n")
    # The exit would wait up to an hour if it waited for the deadline: subprocess.run's timeout
    # (a bound on a hang, not a measurement) would fail the test.
    result = subprocess.run([sys.executable, str(script), f"127.0.0.1:{free_port()}",
                             str(NEVER_REACHED_S)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "cannot reach Kafka" in result.stderr and "500 in total" in result.stderr
