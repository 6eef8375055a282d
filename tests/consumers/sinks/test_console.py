"""The console sink: one readable line or one JSON object per alert, nothing else."""

from __future__ import annotations

import asyncio
import io
import json

from tests.consumers.sinks.outputs import alert, metric
from trainsentry.consumers.sinks.console import ConsoleSink


def test_one_line_per_alert_and_nothing_for_metrics() -> None:
    out = io.StringIO()
    asyncio.run(ConsoleSink(stream=out).write_batch([alert(3), metric(), alert(4)], []))
    assert out.getvalue().splitlines() == [
        "ALERT r trial=j worker=0 TRAIN step 3 [loss]: m",
        "ALERT r trial=j worker=0 TRAIN step 4 [loss]: m",
    ]


def test_json_objects_with_every_field() -> None:
    out = io.StringIO()
    ConsoleSink(as_json=True, stream=out).write_alert(alert(5))
    line = json.loads(out.getvalue())
    assert (line["id"], line["step"], line["details"]) == ("id-5", 5, {"x": "Infinity"})
