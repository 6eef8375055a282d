"""The objective gauges outlive a released trial by a set time, measured with a given clock."""

from __future__ import annotations

from prometheus_client import generate_latest

from trainsentry.consumers.observability import DEFAULT_OBJECTIVE_RETENTION_SECONDS, SidecarMetrics


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scraped(metrics: SidecarMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_the_default_outlasts_a_usual_scrape_interval() -> None:
    assert DEFAULT_OBJECTIVE_RETENTION_SECONDS >= 120


def test_objective_gauges_stay_for_the_retention_after_release_then_go() -> None:
    clock = Clock()
    metrics = SidecarMetrics(objective_retention_seconds=300, clock=clock)
    metrics.set_objective("run-1", final=0.25, best=0.2)
    metrics.set_objective("run-2", final=0.5, best=0.4)
    metrics.forget_trial("run-1")
    clock.now += 299
    assert 'trainsentry_objective_final{trial="run-1"} 0.25' in scraped(metrics)
    clock.now += 1
    text = scraped(metrics)  # the scrape itself removes what is due
    assert 'trial="run-1"' not in text
    assert 'trainsentry_objective_best{trial="run-2"} 0.4' in text


def test_a_trial_that_comes_back_keeps_its_gauges() -> None:
    clock = Clock()
    metrics = SidecarMetrics(objective_retention_seconds=300, clock=clock)
    metrics.set_objective("run-1", final=0.25, best=0.2)
    metrics.forget_trial("run-1")
    metrics.set_objective("run-1", final=0.2, best=0.2)  # resumed
    clock.now += 10_000
    assert 'trainsentry_objective_final{trial="run-1"} 0.2' in scraped(metrics)


def test_zero_retention_removes_at_release() -> None:
    metrics = SidecarMetrics(objective_retention_seconds=0, clock=Clock())
    metrics.set_objective("run-1", final=1.0, best=1.0)
    metrics.forget_trial("run-1")
    assert 'trial="run-1"' not in scraped(metrics)
