"""Metric definitions: validation, log lines, values, the time budget, steps and the objective."""

from __future__ import annotations

import math

import pytest

from tests.rules.events import T0
from trainsentry.consumers.engine import Engine
from trainsentry.protocol import LogEvent, MetricEvent
from trainsentry.rules.base import ConfigError
from trainsentry.rules.config import Config
from trainsentry.rules.metrics import MetricDefinition, MetricExtractor, split_pieces, strip_ansi
from trainsentry.rules.objective import Objective

GAN_LINE = ("GAN_loss=0.138318; Scaled_reg=2.654134; disc:[-0.017371,0.102429] real 93.3% gen "
            "0.0% disc-combined=0.000000; disc_train_loss=1.374587; Loss = 16.020744; Iteration 0 "
            "took 0.704s; Elapsed=0s")
GAN_DEFINITIONS = (MetricDefinition("loss", "Loss = (.*?);"),
                   MetricDefinition("ganloss", "GAN_loss=(.*?);"),
                   MetricDefinition("discloss", "disc_train_loss=(.*?);"),
                   MetricDefinition("disc-combined", "disc-combined=(.*?);"))
CATASTROPHIC = r"((\d+)*\.?\d*)*;"


def log(line, seq, trial="run-1", worker="0", stream="stdout"):
    return LogEvent(trial, T0 + seq, stream, line, seq, worker)


def metrics(out):
    return [(m.name, m.value, m.step) for m in out if isinstance(m, MetricEvent)]


def test_rules_md_gan_example_line():
    values = dict(MetricExtractor(GAN_DEFINITIONS).extract("t", GAN_LINE))
    assert values == {"loss": 16.020744, "ganloss": 0.138318, "discloss": 1.374587,
                      "disc-combined": 0.0}


def test_ansi_escape_sequences_are_removed_before_matching():
    line = "\x1b[1m\x1b[32mLoss = \x1b[0m0.25;\x1b]0;title\x07 \x1b(B"
    assert strip_ansi(line) == "Loss = 0.25; "
    assert MetricExtractor(GAN_DEFINITIONS[:1]).extract("t", line) == [("loss", 0.25)]


def test_carriage_return_progress_output_yields_every_piece():
    line = "\rLoss = 3.0; 10%\rLoss = 2.0; 50%\rLoss = 1.0; 100%\r"
    assert split_pieces(line) == ["Loss = 3.0; 10%", "Loss = 2.0; 50%", "Loss = 1.0; 100%"]
    engine = Engine(Config(metrics=GAN_DEFINITIONS[:1]))
    assert metrics(engine.process(log(line, 0))) == [("loss", 3.0, 0), ("loss", 2.0, 1),
                                                     ("loss", 1.0, 2)]


@pytest.mark.parametrize("capture, value", [("16.020744", 16.020744), ("-1.5e-3", -1.5e-3),
                                            (" 2E+10 ", 2e10), ("inf", math.inf),
                                            ("-Infinity", -math.inf), ("7", 7.0)])
def test_values_parse_as_python_float(capture, value):
    extractor = MetricExtractor([MetricDefinition("m", r"m=([^;]*);")])
    assert extractor.extract("t", f"m={capture};") == [("m", value)]


def test_nan_is_a_value():
    [(name, value)] = MetricExtractor([MetricDefinition("m", r"m=(\S+)")]).extract("t", "m=nan")
    assert name == "m" and math.isnan(value)


@pytest.mark.parametrize("line", ["m=dog;", "m=;", "m=   ;", "m=1.2.3;"])
def test_non_numeric_or_empty_captures_yield_nothing_and_are_counted(line):
    extractor = MetricExtractor([MetricDefinition("m", r"m=(.*?);")])
    assert extractor.extract("t", line) == []
    assert extractor.unparsable == 1


def test_group_that_did_not_take_part_is_counted_not_fatal():
    extractor = MetricExtractor([MetricDefinition("m", r"m=(\d+)?x")])
    assert extractor.extract("t", "m=x") == [] and extractor.unparsable == 1


def test_first_match_first_group_and_one_value_per_definition_per_line():
    extractor = MetricExtractor([MetricDefinition("m", r"m=(\d+)-(\d+)")])
    assert extractor.extract("t", "m=1-2 m=3-4") == [("m", 1.0)]


def test_each_definition_is_searched_separately():
    # a combined alternation would let the first definition's match hide the second's
    extractor = MetricExtractor([MetricDefinition("a", r"x=(\d)"), MetricDefinition("b", r"x=(\d)")])
    assert extractor.extract("t", "x=1") == [("a", 1.0), ("b", 1.0)]


def test_catastrophic_regex_is_disabled_within_budget_while_others_keep_their_values():
    definitions = (MetricDefinition("bad", CATASTROPHIC), MetricDefinition("loss", r"loss=(\S+?);"))
    engine = Engine(Config(metrics=definitions, metric_time_budget_ms=20))
    line = "1" * 5000 + "x; loss=0.5;"
    out = engine.process(log(line, 0))
    assert metrics(out) == [("loss", 0.5, 0)]
    assert engine.stats.regex_timeouts == 1
    notices = engine.drain_notices()
    assert len(notices) == 1 and "'bad'" in notices[0] and "disabled" in notices[0]
    # disabled for that trial: not tried again, reported once; the other definition goes on
    assert metrics(engine.process(log(line, 1))) == [("loss", 0.5, 1)]
    assert engine.stats.regex_timeouts == 1 and engine.drain_notices() == []
    # disabled per trial: another trial still tries it (and is told once, too)
    assert metrics(engine.process(log(line, 0, trial="run-2"))) == [("loss", 0.5, 0)]
    assert engine.stats.regex_timeouts == 2
    assert ["run-2" in n for n in engine.drain_notices()] == [True]


class _SlowPattern:
    """Stands in for a compiled regex whose every search costs ``cost`` seconds of a fake clock."""

    def __init__(self, clock, cost):
        self.clock, self.cost, self.timeouts = clock, cost, []

    def search(self, piece, timeout):
        self.timeouts.append(timeout)
        if self.cost > timeout:
            self.clock.now += timeout
            raise TimeoutError("regex timed out")
        self.clock.now += self.cost
        return None


class _FakeClock:
    now = 0.0

    def __call__(self):
        return self.now


def test_time_budget_is_per_definition_and_line_shared_by_its_pieces():
    # each piece costs 60% of the budget, under it alone; the pieces of one line share one budget,
    # so the second piece is searched with what is left and the definition is disabled there
    clock = _FakeClock()
    extractor = MetricExtractor([MetricDefinition("slow", r"s=(\d)"),
                                 MetricDefinition("loss", r"loss=(\S+?);")],
                                time_budget=0.1, clock=clock)
    slow = _SlowPattern(clock, 0.06)
    extractor._compiled = (("slow", slow),) + extractor._compiled[1:]
    line = "\r".join(f"step {i} loss={i}.5;" for i in range(50))
    found = extractor.extract("t", line)
    assert found == [("loss", i + 0.5) for i in range(50)]  # the other definition keeps every value
    assert slow.timeouts == [0.1, pytest.approx(0.04)]       # not 0.1 again for every piece
    assert clock.now == pytest.approx(0.1)                  # the line cost the budget, not 50 x 0.06
    assert extractor.timeouts == 1 and extractor.disabled("t") == {"slow"}
    assert extractor.drain_disabled() == [("t", "slow", "line")]
    # a new line gets a new budget (for the definitions still enabled in that trial)
    clock.now = 0.0
    assert extractor.extract("u", "a\rb") == [] and slow.timeouts[-2:] == [0.1, pytest.approx(0.04)]


def test_catastrophic_regex_on_a_line_of_many_pieces_is_disabled_at_the_first_timeout():
    definitions = (MetricDefinition("bad", CATASTROPHIC), MetricDefinition("loss", r"loss=(\S+?);"))
    engine = Engine(Config(metrics=definitions, metric_time_budget_ms=20))
    line = "\r".join("1" * 5000 + f"x; loss={i}.5;" for i in range(30))
    assert metrics(engine.process(log(line, 0))) == [("loss", i + 0.5, i) for i in range(30)]
    assert engine.stats.regex_timeouts == 1
    notices = engine.drain_notices()
    assert len(notices) == 1 and "'bad'" in notices[0] and "disabled" in notices[0]


def test_metric_step_counts_earlier_values_per_trial_and_worker():
    engine = Engine(Config(metrics=GAN_DEFINITIONS[:2]))
    out = engine.process_many([log("Loss = 1;", 0), log("GAN_loss=5;", 1), log("Loss = 2;", 2),
                               log("Loss = 9;", 0, worker="1"), log("Loss = 3;", 0, trial="run-2")])
    assert metrics(out) == [("loss", 1.0, 0), ("ganloss", 5.0, 0), ("loss", 2.0, 1),
                            ("loss", 9.0, 0), ("loss", 3.0, 0)]
    assert [m.worker for m in out] == ["0", "0", "0", "1", "0"]


def test_duplicate_seq_is_ignored_and_does_not_advance_the_step():
    engine = Engine(Config(metrics=GAN_DEFINITIONS[:1]))
    out = engine.process_many([log("Loss = 1;", 0), log("Loss = 2;", 1), log("Loss = 2;", 1),
                               log("Loss = 1;", 0), log("Loss = 3;", 2)])
    assert metrics(out) == [("loss", 1.0, 0), ("loss", 2.0, 1), ("loss", 3.0, 2)]
    assert engine.stats.duplicate_log_lines == 2


def test_nothing_in_a_log_line_stops_the_pipeline():
    engine = Engine(Config(metrics=GAN_DEFINITIONS))
    for i, line in enumerate(["", "\r\r\r", "\x1b[", "\udcff Loss = 1;", "Loss = 1e999999;"]):
        engine.process(log(line, i))
    assert engine.stats.metric_values == 2  # '1' and inf


# --- validation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, regex, parameter", [
    ("", "x(.)", "Name"), ("n" * 256, "x(.)", "Name"), ("m", "", "Regex"),
    ("m", "(" + "a" * 499 + ")", "Regex"), ("m", "x(", "Regex"), ("m", r"loss=\d+", "Regex")])
def test_definition_validation_names_the_definition_and_field(name, regex, parameter):
    with pytest.raises(ConfigError) as error:
        MetricDefinition(name, regex)
    assert error.value.parameter == parameter
    assert f"metric definition {name!r}" in str(error.value)


def test_longest_valid_name_and_regex():
    MetricDefinition("n" * 255, "(" + "a" * 498 + ")")


def test_at_most_twenty_definitions_by_default_limit_capped_at_forty():
    many = tuple(MetricDefinition(f"m{i}", rf"m{i}=(\S+)") for i in range(41))
    Config(metrics=many[:20])
    with pytest.raises(ConfigError, match="'m20'.*limit of 20"):
        Config(metrics=many[:21])
    Config(metrics=many[:40], max_metric_definitions=40)
    with pytest.raises(ConfigError, match="max_metric_definitions"):
        Config(metrics=many[:40], max_metric_definitions=41)


def test_duplicate_names_are_rejected():
    with pytest.raises(ConfigError, match="metric definition 'loss'.*twice"):
        Config(metrics=(MetricDefinition("loss", "a(.)"), MetricDefinition("loss", "b(.)")))


# --- objective ------------------------------------------------------------------------------------

def test_objective_final_best_ranking_and_never_emitted():
    config = Config(metrics=(MetricDefinition("acc", r"acc=(\S+)"),),
                    objective=Objective("acc", "Maximize"))
    engine = Engine(config)
    lines = {"a": ["acc=0.5", "acc=0.9", "acc=0.7", "acc=nan"],
             "b": ["acc=0.8", "acc=inf", "acc=0.85"],
             "c": ["no metric here"]}
    out = []
    for trial, trial_lines in lines.items():
        out += engine.process_many(log(line, i, trial=trial) for i, line in enumerate(trial_lines))
    assert all(m.objective is True for m in out)
    a = engine.objectives.result("a")
    assert (a.final, a.final_step, a.best, a.best_step) == (0.7, 2, 0.9, 1)
    assert [r.trial for r in engine.objectives.ranking()] == ["b", "a"]
    assert engine.objectives.never_emitted() == ["c"]
    engine.end_of_input()
    assert any("'c' never emitted the objective" in n for n in engine.drain_notices())


def test_objective_must_be_a_defined_metric():
    with pytest.raises(ConfigError, match="objective 'acc'.*MetricName"):
        Config(metrics=(MetricDefinition("loss", "l=(.*)"),), objective=Objective("acc"))
    with pytest.raises(ConfigError, match="Type"):
        Objective("loss", "Smallest")
