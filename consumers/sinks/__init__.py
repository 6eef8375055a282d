"""Where the driver's outputs go, by name: a new sink is one module and one line in :data:`SINKS`.

A sink class named here has ``from_target(target, settings)``, which makes it from the text after
``NAME:`` in ``--sink NAME[:TARGET]``. Its module is imported only when the sink is made, so a
command that uses no Kafka sink runs without aiokafka.

>>> make_sink("console:json", None).format.__name__
'alert_json'
>>> make_sink("pigeon", None)
Traceback (most recent call last):
...
trainsentry.consumers.sinks.SinkTargetError: unknown sink 'pigeon' (known: console, jsonl, kafka)
"""

from __future__ import annotations

import importlib

from trainsentry.consumers.output_file import OutputFileError
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sinks.base import Sink

SINKS: dict[str, str] = {  # name -> "module:class"
    "kafka": "trainsentry.consumers.sinks.kafka:KafkaSink",
    "jsonl": "trainsentry.consumers.sinks.json_lines:JsonLinesSink",
    "console": "trainsentry.consumers.sinks.console:ConsoleSink",
}


class SinkTargetError(ValueError):
    """A ``NAME[:TARGET]`` that names no sink, or a target the sink cannot use."""


def make_sink(spec: str, settings: KafkaSettings | None) -> Sink:
    """The sink ``spec`` (``NAME`` or ``NAME:TARGET``) describes, made with ``settings``."""
    name, _, target = spec.partition(":")
    if name not in SINKS:
        raise SinkTargetError(f"unknown sink {name!r} (known: {', '.join(sorted(SINKS))})")
    module, _, cls = SINKS[name].partition(":")
    try:
        sink_class = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise SinkTargetError(f"the {name} sink needs {exc.name}, which is not installed") from None
    try:
        return sink_class.from_target(target, settings)
    except (OutputFileError, ValueError) as exc:
        raise SinkTargetError(f"{spec}: {exc}") from None


__all__ = ["SINKS", "Sink", "SinkTargetError", "make_sink"]
