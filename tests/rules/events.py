"""Event builders for rule and engine tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from trainsentry.consumers.engine import Engine
from trainsentry.protocol import AlertEvent, Event, ScalarEvent, TensorEvent
from trainsentry.rules.config import Config, RuleConfig

T0 = 1_700_000_000.0


def scalar(name: str, step: int, value: float, *, trial: str = "run-1", worker: str = "0",
           mode: str = "TRAIN", collections: Sequence[str] = ("losses",), ts: float | None = None,
           global_step: int | None = None) -> ScalarEvent:
    return ScalarEvent(trial, T0 + step if ts is None else ts, mode, step, name, value, worker,
                       global_step, tuple(collections))


def tensor(name: str, step: int, data, *, trial: str = "run-1", worker: str = "0",
           mode: str = "TRAIN", collections: Sequence[str] = (), ts: float | None = None,
           global_step: int | None = None, dtype=None) -> TensorEvent:
    array = np.asarray(data, dtype=dtype)
    return TensorEvent.from_array(array, trial=trial, ts=T0 + step if ts is None else ts,
                                  mode=mode, step=step, name=name, worker=worker,
                                  global_step=global_step, collections=tuple(collections))


def losses(values: Iterable[float], every: int = 1, start: int = 0, **fields) -> list[ScalarEvent]:
    name = fields.pop("name", "loss")
    return [scalar(name, start + i * every, v, **fields) for i, v in enumerate(values)]


def engine_for(rule_type: str, name: str | None = None, **params) -> Engine:
    return Engine(Config(rules=(RuleConfig.of(rule_type, name, **params),)))


def alerts(engine: Engine, events: Iterable[Event]) -> list[AlertEvent]:
    out = engine.process_many(events) + engine.end_of_input()
    return [e for e in out if isinstance(e, AlertEvent)]


def steps(found: Iterable[AlertEvent]) -> list[int]:
    return [a.step for a in found]
