"""Child processes of a benchmark: the real sidecar (``trainsentry run``) and the relay."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from benchmarks import cluster
from benchmarks.machine import REPO
from trainsentry.protocol import Topics


class Child:
    """A process started for the duration of a ``with`` block, then stopped with SIGTERM."""

    def __init__(self, args: Sequence[str]) -> None:
        self.args = list(args)
        self.process: subprocess.Popen | None = None
        self._stderr = tempfile.TemporaryFile()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Child:
        self.process = subprocess.Popen(self.args, cwd=REPO, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=self._stderr,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    def __exit__(self, *exc: object) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._stderr.close()

    def check_alive(self) -> None:
        """Raise with the end of its stderr if the process has exited."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{' '.join(self.args[:4])} exited with code {self.process.returncode}:\n"
                               + self.stderr()[-2000:])

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")


def sidecar(bootstrap_servers: str, topics: Topics, config: Path, group_id: str,
            fetch_max_wait_ms: int, metrics_port: int | None = None) -> Child:
    """``trainsentry run`` exactly as an operator starts it (short group timeouts)."""
    args = [sys.executable, "-m", "trainsentry.consumers.cli", "run", "--log-level", "WARNING",
            "--config", str(config), "--bootstrap-servers", bootstrap_servers,
            "--topic-prefix", topics.prefix, "--group-id", group_id,
            "--session-timeout-ms", str(cluster.SESSION_TIMEOUT_MS),
            "--fetch-max-wait-ms", str(fetch_max_wait_ms)]
    if metrics_port is not None:
        args += ["--metrics-port", str(metrics_port)]
    return Child(args)


def relay(bootstrap_servers: str, source: str, target: str, group_id: str, fetch_max_wait_ms: int,
          marked_only: bool) -> Child:
    """``benchmarks.relay``: every event, or only the marked ones, republished to ``target``."""
    return Child([sys.executable, "-m", "benchmarks.relay", bootstrap_servers, source, target,
                  "--group-id", group_id, "--fetch-max-wait-ms", str(fetch_max_wait_ms),
                  *(["--marked-only"] if marked_only else [])])
