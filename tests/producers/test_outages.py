"""The training loop goes on, at full speed, whatever happens to the broker."""

import logging
import time

import numpy as np
import pytest

from trainsentry.consumers.broker import EmbeddedBroker, free_port
from trainsentry.producers import SaveConfig, SenderSettings, TensorPublisher

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
