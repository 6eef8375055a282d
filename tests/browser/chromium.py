"""Debian's Chromium driven by selenium through /usr/bin/chromedriver: no browser download.

The flags keep a headless Chromium off the network (this suite runs on machines with none) and
out of any profile but a fresh one.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

CHROMIUM = Path(os.environ.get("TRAINSENTRY_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("TRAINSENTRY_CHROMEDRIVER", "/usr/bin/chromedriver"))
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000", "--hide-scrollbars")

T = TypeVar("T")


def missing() -> str | None:
    """Why a browser cannot be started here, or ``None``."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (path.exists() and os.access(path, os.X_OK)):
            return f"{path} is missing: run tests/browser/ensure_chromium.sh (apt-get install chromium chromium-driver)"
    return None


def start_chromium(profile: Path):
    """A headless Chromium with a new empty profile in ``profile``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # The driver path is given: selenium's own driver manager is never asked to download one.
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


def wait_for(condition: Callable[[], T | None], timeout: float = 60.0, poll: float = 0.25,
             what: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds.

    A bound on how long to keep trying, not a timed assertion: the result is checked, not the time.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the page may be between two renders
            last_error = exc
        time.sleep(poll)
    raise AssertionError(f"gave up waiting for {what} after {timeout:.0f} s"
                         + (f" (last error: {last_error})" if last_error else ""))


def remove_profile(profile: Path) -> None:
    shutil.rmtree(profile, ignore_errors=True)
