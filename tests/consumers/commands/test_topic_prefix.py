"""``$TRAINSENTRY_TOPIC_PREFIX`` moves the whole pipeline: publisher, sidecar and ``tail``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid

from tests.sidecar_harness import TEST_SESSION_TIMEOUT_MS
from tests.streams import write_config
from trainsentry.consumers.broker import delete_topics
from trainsentry.producers.publisher import TensorPublisher
from trainsentry.producers.save_config import SaveConfig
from trainsentry.protocol import Topics
from trainsentry.protocol.settings import ENV_BOOTSTRAP, ENV_TOPIC_PREFIX

CLI = [sys.executable, "-m", "trainsentry.consumers.cli"]
# docs/rules.md, LossNotDecreasing: saved every 4 steps, the first alert is at step 12.
VECTOR = [0.3, 0.33, 0.31, 0.30, 0.28]


def test_publisher_sidecar_and_tail_all_use_the_prefix_from_the_environment(
        bootstrap_servers, tmp_path, monkeypatch) -> None:
    prefix = f"x{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv(ENV_TOPIC_PREFIX, prefix)
    monkeypatch.setenv(ENV_BOOTSTRAP, bootstrap_servers)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    config = write_config(tmp_path)
    log_path = tmp_path / "sidecar.log"
    with open(log_path, "w") as log:
        sidecar = subprocess.Popen([*CLI, "run", "--config", str(config), "--group-id", f"{prefix}-g",
                                    "--session-timeout-ms", str(TEST_SESSION_TIMEOUT_MS)],
                                   stdout=subprocess.DEVNULL, stderr=log, env=env)
    try:
        deadline = time.monotonic() + 30
        while "sidecar consuming" not in log_path.read_text():
            assert sidecar.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        publisher = TensorPublisher("prefixed-run", save_config=SaveConfig(save_interval=4))
        try:
            for i, value in enumerate(VECTOR):
                assert publisher.scalar("loss", value, step=4 * i, collections=["losses"])
        finally:
            publisher.close(timeout=10)
        assert publisher.topics == Topics(prefix)
        tail = subprocess.run([*CLI, "tail", "--from", "beginning", "--max-alerts", "1"],
                              capture_output=True, text=True, timeout=60, env=env)
        sidecar.terminate()
        assert sidecar.wait(timeout=30) == 0
    finally:
        if sidecar.poll() is None:
            sidecar.kill()
        asyncio.run(delete_topics(bootstrap_servers, Topics(prefix).all()))
    stderr = log_path.read_text()
    assert f"sidecar consuming {prefix}.tensors and {prefix}.logs" in stderr
    assert tail.returncode == 0, tail.stderr
    assert " WARNING LossNotDecreasing trial=prefixed-run worker=0 TRAIN step 12 [loss]" in tail.stdout
