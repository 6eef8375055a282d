"""The dashboard in a real headless Chromium against a live pipeline on the broker:
publisher -> topics -> sidecar -> topics -> ``trainsentry ui`` -> the page.

A trial appears on the runs page, and an alert marker appears on its loss curve while the page is
open (no reload), with the rule and its message on hover. Bad input gets a 4xx the page can read.
"""

from __future__ import annotations

import numpy as np
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from tests.browser.chromium import wait_for
from tests.browser.dashboard_process import DashboardProcess
from tests.sidecar_harness import running_sidecar
from trainsentry.producers.publisher import TensorPublisher
from trainsentry.producers.save_config import SaveConfig

TRIAL = "browser-live-run"
RULES = """\
[[rules]]
type = "LossNotDecreasing"
num_steps = 5
"""


def test_a_trial_and_an_alert_marker_appear_live(chromium, bootstrap_servers, topics, tmp_path,
                                                  screenshot_dir) -> None:
    config = tmp_path / "rules.toml"
    config.write_text(RULES)
    rng = np.random.default_rng(0)
    weights = rng.normal(scale=0.1, size=(8, 8)).astype(np.float32)
    with running_sidecar(bootstrap_servers, topics, config) as sidecar, \
            DashboardProcess(bootstrap_servers, topics) as dashboard:
        sidecar.wait_ready()
        chromium.get(dashboard.url)
        wait_for(lambda: "on" in chromium.find_element(By.ID, "live").get_attribute("class"),
                 what="the runs page's live connection")
        publisher = TensorPublisher(TRIAL, worker="0", save_config=SaveConfig(save_interval=1),
                                    bootstrap_servers=bootstrap_servers, topic_prefix=topics.prefix)
        try:
            for step in range(10):  # a falling loss: nothing to say yet
                weights += rng.normal(scale=1e-2, size=weights.shape).astype(np.float32)
                publisher.scalar("loss", 1.0 / (step + 1), step=step, collections=["losses"])
                publisher.tensor("fc1.weight", weights, step=step, collections=["weights"])
            assert publisher.flush(30)

            wait_for(lambda: chromium.find_elements(By.CSS_SELECTOR, f'tr.run[data-trial="{TRIAL}"]'),
                     what="the trial's row on the runs page")
            chromium.find_element(By.CSS_SELECTOR, f'tr.run[data-trial="{TRIAL}"] a').click()
            wait_for(lambda: chromium.find_elements(By.CSS_SELECTOR, '.chart[data-name="loss"] canvas'),
                     what="the loss curve")
            wait_for(lambda: chromium.find_elements(By.CSS_SELECTOR, '.chart[data-name="fc1.weight"] canvas'),
                     what="the statistics of fc1.weight")
            chromium.execute_script("window.sameDocument = true")
            assert not chromium.find_elements(By.CSS_SELECTOR, ".alert-marker")

            for step in range(10, 20):  # the loss stops falling: LossNotDecreasing fires
                publisher.scalar("loss", 0.5, step=step, collections=["losses"])
                publisher.tensor("fc1.weight", weights, step=step, collections=["weights"])
            assert publisher.flush(30)
            markers = wait_for(lambda: chromium.find_elements(
                By.CSS_SELECTOR, '.chart[data-name="loss"] .alert-marker[data-rule="LossNotDecreasing"]'),
                what="an alert marker on the loss curve")
            assert chromium.execute_script("return window.sameDocument === true")  # live, not reloaded
            assert int(markers[0].get_attribute("data-step")) >= 10
            wait_for(lambda: chromium.find_elements(By.CSS_SELECTOR, '#alerts tr[data-rule="LossNotDecreasing"]'),
                     what="the alert in the alerts feed")

            ActionChains(chromium).move_to_element(markers[0]).perform()
            tip = wait_for(lambda: chromium.find_element(By.ID, "tooltip").text, what="the marker's tooltip")
            assert "LossNotDecreasing" in tip and "did not decrease" in tip
            chromium.save_screenshot(str(screenshot_dir / "dashboard-live.png"))
            assert (screenshot_dir / "dashboard-live.png").stat().st_size > 10_000
        finally:
            publisher.close(timeout=10)

        statuses = chromium.execute_async_script("""
            const done = arguments[arguments.length - 1];
            Promise.all(['/api/trial?trial=nobody', '/api/trial', '/api/runs?x=1', '/api/trial?trial=%FF']
                .map((url) => fetch(url).then(async (r) => [r.status, await r.text()]))).then(done);
        """)
        assert [status for status, _ in statuses] == [404, 400, 400, 400]
        assert all("Traceback" not in text and text.count("\n") == 1 for _, text in statuses)
        chromium.get(dashboard.url + "trial?trial=nobody")
        assert "trial 'nobody' has not been seen" in chromium.find_element(By.TAG_NAME, "body").text
