"""The browser tests' one headless Chromium (a session fixture: the machine has two cores).

Debian's ``chromium`` and ``chromium-driver`` are installed by ``ensure_chromium.sh`` when missing
(``make test`` runs it; so does this fixture, as root). The tests skip, saying why, only when
that is impossible here.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.chromium import missing, remove_profile, start_chromium

ENSURE = Path(__file__).with_name("ensure_chromium.sh")
SCREENSHOTS_ENV = "TRAINSENTRY_SCREENSHOTS"  # a folder to keep the screenshots in (the README's)


INSTALL_TIMEOUT = 900  # seconds: apt-get may install Chromium within the first test's setup


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.timeout(INSTALL_TIMEOUT + 120))


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """A selenium driver of a headless Chromium with a fresh profile."""
    if missing() is not None and os.geteuid() == 0:
        subprocess.run(["sh", str(ENSURE)], check=False, timeout=INSTALL_TIMEOUT)
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[test]'")
    profile = Path(tempfile.mkdtemp(prefix="trainsentry-chromium-"))
    driver = start_chromium(profile)
    try:
        yield driver
    finally:
        driver.quit()
        remove_profile(profile)


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """Where a test saves its screenshots: ``$TRAINSENTRY_SCREENSHOTS`` if set, else its tmp folder."""
    folder = Path(os.environ.get(SCREENSHOTS_ENV) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
