"""How an alert reads outside Kafka: one line for a person, one JSON object for a program.

>>> a = AlertEvent(trial="run-1", ts=1.0, id="ab12", rule="loss", rule_type="LossNotDecreasing",
...                mode="TRAIN", step=12, tensors=("loss",), message="loss did not decrease",
...                details={"ratio": float("nan")}, event_ts=1.0)
>>> alert_line(a)
'ALERT loss (LossNotDecreasing) trial=run-1 worker=0 TRAIN step 12 [loss]: loss did not decrease'
>>> json.loads(alert_json(a))["details"]
{'ratio': 'NaN'}
"""

from __future__ import annotations

import json
import math
from typing import Any

from trainsentry.protocol import AlertEvent, to_wire


def alert_line(alert: AlertEvent) -> str:
    """One line a person can act on."""
    kind = alert.rule if alert.rule == alert.rule_type else f"{alert.rule} ({alert.rule_type})"
    return (f"ALERT {kind} trial={alert.trial} worker={alert.worker} {alert.mode} step {alert.step} "
            f"[{', '.join(alert.tensors)}]: {alert.message}")


def alert_json(alert: AlertEvent) -> str:
    """One alert as one line of JSON with every field; NaN and infinities as strings."""
    return json.dumps(_finite(to_wire(alert)), sort_keys=True, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
