"""How much an engine may hold and spend: caps on its state, budgets of metric matching.

The defaults suit one sidecar with a gigabyte or two of memory and the consumer group's default
session timeout (6 s); ``trainsentry run`` sets them from its command line. What a user loses when
a cap is hit is in docs/rules.md, "Limits".

>>> EngineLimits().max_trials
10000
>>> EngineLimits(max_trials=0)
Traceback (most recent call last):
...
ValueError: max_trials: expected a whole number >= 1, got 0
"""

from __future__ import annotations

from dataclasses import dataclass, fields

DEFAULT_MAX_TRIALS = 10_000
DEFAULT_MAX_SERIES_PER_TRIAL = 10_000
DEFAULT_MAX_STATE_BYTES = 1024 * 1024 * 1024
DEFAULT_METRIC_BATCH_BUDGET_MS = 1000.0
DEFAULT_METRIC_TRIAL_BUDGET_MS = 1000.0


@dataclass(frozen=True)
class EngineLimits:
    """Caps and budgets of one engine.

    - ``max_trials``: trials held at once; opening one more lets the least recently active go.
    - ``max_series_per_trial``: series (worker, view, tensor) and log streams (worker, stream,
      session) of one trial; events of further ones are counted and ignored.
    - ``max_state_bytes``: bytes of state held (as sized by the store); checked as each batch
      begins, the least recently active trials go until the state fits again (the most recent
      one always stays).
    - ``metric_batch_budget_ms``: matching time of every metric definition on every log line of
      one batch; once spent, the batch's remaining lines are not matched (counted).
    - ``metric_trial_budget_ms``: matching time one definition may take on a trial's lines beyond
      a millisecond a line, before it is disabled for that trial.
    """

    max_trials: int = DEFAULT_MAX_TRIALS
    max_series_per_trial: int = DEFAULT_MAX_SERIES_PER_TRIAL
    max_state_bytes: int = DEFAULT_MAX_STATE_BYTES
    metric_batch_budget_ms: float = DEFAULT_METRIC_BATCH_BUDGET_MS
    metric_trial_budget_ms: float = DEFAULT_METRIC_TRIAL_BUDGET_MS

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.type == "int":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"{spec.name}: expected a whole number >= 1, got {value!r}")
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{spec.name}: expected milliseconds > 0, got {value!r}")
