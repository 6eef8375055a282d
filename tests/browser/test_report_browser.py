"""The postmortem report of a known run, opened from disk in the same headless Chromium: its
pictures load (they are inside the file) and it shows the curves and the alerts of that run."""

from __future__ import annotations

from selenium.webdriver.common.by import By

from tests.browser.chromium import wait_for
from tests.consumers.report.known_run import TRIALS, write_known_run
from trainsentry.consumers.cli import main


def test_the_report_shows_the_curves_and_alerts_of_a_known_run(chromium, tmp_path, screenshot_dir) -> None:
    replay, config = write_known_run(tmp_path)
    output = tmp_path / "report.html"
    assert main(["report", "--input", str(replay), "--config", str(config), "--output", str(output)]) == 0

    chromium.get(output.as_uri())
    wait_for(lambda: chromium.execute_script("return document.readyState") == "complete", what="the report")
    for trial in TRIALS:
        section = chromium.find_element(By.CSS_SELECTOR, f'section.trial[data-trial="{trial}"]')
        for picture in ("curves", "timeline", "layer-stats"):
            image = section.find_element(By.CSS_SELECTOR, f"img.{picture}")
            size = chromium.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", image)
            assert size[0] > 300 and size[1] > 100, (trial, picture, size)  # decoded, drawn
        rules = {cell.text for cell in section.find_elements(By.CSS_SELECTOR, "table.alerts td:nth-child(4)")}
        assert rules == {"LossNotDecreasing", "WeightUpdateRatio"}
        assert "loss did not decrease over 20 steps" in section.text
    ranking = chromium.find_element(By.ID, "objective").text
    assert ranking.index("run-b") < ranking.index("run-a")
    height = chromium.execute_script("return document.body.scrollHeight")
    chromium.set_window_size(1400, min(height, 2000))
    chromium.save_screenshot(str(screenshot_dir / "report.png"))
    chromium.set_window_size(1400, 1000)
