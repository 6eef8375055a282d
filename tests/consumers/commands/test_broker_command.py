"""``trainsentry broker``: the bundled broker for a user, started, used and stopped with Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

from trainsentry.consumers.broker import ensure_topics, free_port, port_taken
from trainsentry.protocol import Topics

pytestmark = pytest.mark.usefixtures("broker_binary")  # brokers of its own, or none reachable


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "trainsentry.consumers.cli", "broker", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def lines_until_export(process: subprocess.Popen, timeout: float = 30) -> list[str]:
    """Its stdout up to the `export` line (the broker is up and the topics exist by then)."""
    lines: list[str] = []

    def read() -> None:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.strip().startswith("export KAFKA_BOOTSTRAP_SERVERS="):
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert lines and lines[-1].strip().startswith("export"), (lines, process.poll())
    return lines


def test_it_starts_creates_the_topics_says_how_to_use_it_and_stops_on_ctrl_c() -> None:
    port = free_port()
    process = start("--port", str(port), "--topic-prefix", "mine")
    try:
        lines = lines_until_export(process)
        address = f"127.0.0.1:{port}"
        assert f"export KAFKA_BOOTSTRAP_SERVERS={address}" in [line.strip() for line in lines]
        assert any(f"at {address}" in line for line in lines)
        # The topics are there, with the partitions it said; a client connects as the line says.
        partitions = asyncio.run(ensure_topics(address, Topics("mine").all()))
        assert partitions == {name: 4 for name in Topics("mine").all()}
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert port_taken(port) is None  # the broker process is gone with it


def test_sigterm_stops_it_too() -> None:
    port = free_port()
    process = start("--port", str(port))
    try:
        lines_until_export(process)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert port_taken(port) is None


def test_a_busy_port_is_one_line_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = start("--port", str(port))
        out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert err.count("\n") == 1 and f"--port: cannot listen on 127.0.0.1:{port}" in err, err
    assert out == ""
