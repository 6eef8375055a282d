"""``trainsentry ui`` as a child process, as a user starts it; its URL read from what it prints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

from trainsentry.protocol import Topics


class DashboardProcess:
    def __init__(self, bootstrap_servers: str, topics: Topics, *extra: str) -> None:
        self.args = [sys.executable, "-m", "trainsentry.consumers.cli", "ui", "--port", "0",
                     "--bootstrap-servers", bootstrap_servers, "--topic-prefix", topics.prefix, *extra]
        self.process: subprocess.Popen | None = None
        self.lines: list[str] = []
        self.url: str | None = None

    def __enter__(self) -> DashboardProcess:
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 60
        while self.url is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("trainsentry ui did not start:\n" + "".join(self.lines))
            time.sleep(0.05)
        return self

    def _read(self) -> None:
        assert self.process and self.process.stderr
        for line in self.process.stderr:
            self.lines.append(line)
            found = re.search(r"dashboard at (http://\S+/)", line)
            if found:
                self.url = found.group(1)

    def __exit__(self, *exc: object) -> None:
        assert self.process
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
