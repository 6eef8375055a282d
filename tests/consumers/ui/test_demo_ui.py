"""``trainsentry demo --ui``: the demo on its embedded broker with the dashboard beside it, which
shows the demo's trial and alerts and stays up after training until SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

pytestmark = pytest.mark.usefixtures("broker_binary")  # brokers of its own, or none reachable


def test_demo_with_the_dashboard() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "trainsentry.consumers.cli", "demo", "--ui", "--port", "0", "--steps", "150"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 90
        while not any("the dashboard stays up" in line for line in lines):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.2)
        url = next(re.search(r"dashboard at (\S+)", line).group(1) for line in lines if "dashboard at" in line)
        with urllib.request.urlopen(url + "api/runs", timeout=30) as answer:
            runs = json.load(answer)["runs"]
        assert [run["trial"] for run in runs] == ["demo-run"]
        assert runs[0]["alerts"]["warning"] > 0 and runs[0]["last_step"] == 149
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0, "".join(lines)
