"""The engine's counters: what it saw and what it did, over its whole life."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EngineStats:
    """Counters of what the engine saw and did (never reset)."""

    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("tensor", "scalar", "log", "metric", "alert"), 0))
    late: int = 0                  # tensor/scalar events after a later step of their series
    duplicate: int = 0             # tensor/scalar events repeating a step of their series
    duplicate_log_lines: int = 0   # log events at or below the highest seq seen
    unselected: int = 0            # tensor/scalar events no rule selects
    skipped: dict[str, int] = field(default_factory=dict)  # "rule: reason" -> selected, unusable
    metric_values: int = 0
    unparsable_captures: int = 0
    regex_timeouts: int = 0
    alerts: dict[str, int] = field(default_factory=dict)   # rule name -> alerts emitted
    suppressed_findings: int = 0   # findings for a step older than the remembered alerted steps
    # Metric matching (rules/metrics.py, MatchBudgets): searches started, seconds they took, the
    # most seconds one batch took, log lines not matched because their batch's budget was spent.
    regex_matches: int = 0
    regex_seconds: float = 0.0
    regex_batch_seconds_max: float = 0.0
    metric_lines_skipped: int = 0
    # Caps (consumers/engine/capacity.py): trials let go by reason ("trials", "bytes"), events of
    # series and log streams refused beyond max_series_per_trial.
    evicted_trials: dict[str, int] = field(default_factory=dict)
    refused_series: int = 0
    # Steps far from their series (consumers/engine/steps.py).
    implausible_steps: int = 0     # ahead by more than 2^32, not taken
    step_jumps: int = 0            # such jumps confirmed by the next event, taken
    restarted_series: int = 0      # series restarted far below a stray newest step
    # Rules that raised (consumers/engine/rule_failures.py): each disabled for its trial.
    rule_failures: int = 0
    # Resumed runs (consumers/engine/sessions.py): series restarted by a new writer session.
    resumed_series: int = 0
