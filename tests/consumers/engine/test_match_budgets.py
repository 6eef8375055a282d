"""Metric matching within budgets: per line, per batch, per definition and trial.

No wall time is asserted: the bounds are counts and the matching time the engine reports.
"""

from __future__ import annotations

import asyncio
import math

import pytest

from tests.consumers.test_driver import KeptSink, ListSource, records
from trainsentry.consumers.driver import Driver
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.engine.limits import EngineLimits
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sources.base import Batch, Part
from trainsentry.protocol import LogEvent
from trainsentry.rules.config import Config
from trainsentry.rules.metrics import MatchBudgets, MetricDefinition, MetricExtractor

CATASTROPHIC = r"((\d+)*\.?\d*)*;"
DIGITS = "1" * 5000 + "x;"  # the pattern backtracks without end on it
SESSION_TIMEOUT_S = KafkaSettings("k:1").session_timeout_ms / 1000
# The regex package stops a search within about a millisecond of its timeout on an idle machine
# (docs/rules.md, "Limits"); a loaded one is granted a tenth of the budget more.
OVERSHOOT = 0.1


def test_150_trials_each_with_one_catastrophic_line_fit_one_batch_budget() -> None:
    limits = EngineLimits()
    engine = Engine(Config(metrics=(MetricDefinition("bad", CATASTROPHIC),
                                    MetricDefinition("loss", r"loss=(\S+?);"))), limits)
    lines = [LogEvent(f"trial-{i}", 1.0, "stdout", DIGITS + " loss=0.5;", 0) for i in range(150)]
    log: list = []
    sink = KeptSink("sink", log)
    source = ListSource([Batch([Part(("logs", 0), records=records(lines, topic="logs"))])], log)
    assert asyncio.run(Driver(engine, source, [sink]).run())
    stats = engine.stats
    line_s, batch_s = engine.config.metric_time_budget_ms / 1000, limits.metric_batch_budget_ms / 1000
    # Each line's first search times out on its own budget until the batch's is spent; then the
    # batch's other lines wait for no match at all.
    attempted = 150 - stats.metric_lines_skipped + 1  # the line the batch's budget cut counts skipped
    assert attempted <= math.ceil(batch_s / line_s) + 1
    assert stats.regex_matches <= 2 * attempted  # two definitions a line at most
    assert stats.regex_timeouts >= attempted - 2
    assert stats.regex_batch_seconds_max <= batch_s * (1 + OVERSHOOT) < SESSION_TIMEOUT_S
    assert len(sink.outputs) < 150  # skipped lines yield no metric
    said = [n for n in engine.drain_notices() if "matching budget" in n]
    assert said and all("skipped" in n for n in said)
    # The next batch has a budget again: a cheap line is matched.
    engine.begin_batch()
    assert engine.process(LogEvent("fresh", 2.0, "stdout", "loss=0.25;", 0))[0].value == 0.25


class FakeClock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


class CostlyPattern:
    """A search that costs ``cost`` seconds of the fake clock (or its timeout, if less)."""

    def __init__(self, clock: FakeClock, cost: float) -> None:
        self.clock, self.cost, self.searches = clock, cost, 0

    def search(self, piece: str, timeout: float):
        self.searches += 1
        if self.cost > timeout:
            self.clock.now += timeout
            raise TimeoutError
        self.clock.now += self.cost
        return None


def extractor_with(cost: float, budgets: MatchBudgets) -> tuple[MetricExtractor, CostlyPattern]:
    clock = FakeClock()
    extractor = MetricExtractor([MetricDefinition("slow", r"s=(\d)"),
                                 MetricDefinition("loss", r"loss=(\S+?);")], clock=clock,
                                budgets=budgets)
    slow = CostlyPattern(clock, cost)
    extractor._compiled = (("slow", slow),) + extractor._compiled[1:]
    return extractor, slow


def test_lines_each_just_under_the_line_budget_disable_the_definition_after_the_trial_budget() -> None:
    extractor, slow = extractor_with(0.099, MatchBudgets(line=0.1, trial=1.0, allowance=0.001))
    for _ in range(30):
        assert extractor.extract("t", "loss=1;") == [("loss", 1.0)]  # the other one goes on
    # 98 ms of excess a line: past one second at the eleventh line, then never searched again.
    assert slow.searches == 11 and extractor.disabled("t") == {"slow"}
    assert extractor.timeouts == 0 and extractor.drain_disabled() == [("t", "slow", "trial")]
    assert extractor.extract("u", "loss=2;") == [("loss", 2.0)] and slow.searches == 12


def test_cheap_lines_pay_back_what_an_occasional_slow_one_cost() -> None:
    extractor, slow = extractor_with(0.0, MatchBudgets(line=0.1, trial=0.05, allowance=0.001))
    for round_ in range(100):
        slow.cost = 0.03 if round_ % 50 == 0 else 0.0  # one slow line in fifty
        extractor.extract("t", "x")
    assert extractor.disabled("t") == frozenset() and slow.searches == 100


def test_a_line_cut_by_the_batch_budget_yields_nothing_and_skips_the_rest_of_the_batch() -> None:
    extractor, slow = extractor_with(0.04, MatchBudgets(line=0.1, batch=0.1))
    extractor.begin_batch()
    # 0.04 s each: the first two lines fit the batch's 0.1 s, the third is cut at 0.02 s.
    assert extractor.extract("a", "loss=1;") == [("loss", 1.0)]
    assert extractor.extract("b", "loss=1;") == [("loss", 1.0)]
    assert extractor.extract("c", "loss=1;") == []
    assert extractor.extract("d", "loss=1;") == [] and slow.searches == 3
    assert extractor.skipped_lines == 2 and extractor.timeouts == 0  # nobody's fault: not disabled
    assert extractor.batch_seconds_max == pytest.approx(0.1)
    extractor.begin_batch()
    assert extractor.extract("e", "loss=3;") == [("loss", 3.0)]


def test_without_batches_only_the_line_and_trial_budgets_apply() -> None:
    extractor, slow = extractor_with(0.04, MatchBudgets(line=0.1, batch=0.1))
    for trial in "abcdefgh":  # no begin_batch: an engine used outside a driver
        assert extractor.extract(trial, "loss=1;") == [("loss", 1.0)]
    assert extractor.skipped_lines == 0 and slow.searches == 8
