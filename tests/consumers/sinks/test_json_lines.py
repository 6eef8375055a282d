"""The JSON-lines sink: a whole file or none for ``replay --output``, appends for ``--sink jsonl``."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.consumers.sinks.outputs import alert, metric
from trainsentry.consumers.output_file import OutputFileError
from trainsentry.consumers.sinks.json_lines import JsonLinesSink


def write(sink: JsonLinesSink, *batches, complete: bool = True) -> None:
    async def run() -> None:
        await sink.start()
        for batch in batches:
            await sink.write_batch(batch, [])
        await sink.stop(complete)
    asyncio.run(run())


def test_the_file_appears_whole_once_the_run_is_complete(tmp_path) -> None:
    target = tmp_path / "alerts.jsonl"
    target.write_text("previous\n")
    sink = JsonLinesSink(str(target))
    asyncio.run(sink.write_batch([alert(1), metric()], []))
    assert target.read_text() == "previous\n"  # nothing replaced before the end
    write(sink, [alert(2)])
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(line["id"], line["details"]["x"]) for line in lines] == [("id-1", "Infinity"), ("id-2", "Infinity")]
    assert not (tmp_path / "alerts.jsonl.partial").exists()


def test_an_interrupted_run_leaves_the_previous_file(tmp_path) -> None:
    target = tmp_path / "alerts.jsonl"
    target.write_text("previous\n")
    write(JsonLinesSink(str(target)), [alert(1)], complete=False)
    assert target.read_text() == "previous\n"
    assert list(tmp_path.iterdir()) == [target]


def test_appending_keeps_what_was_there_and_each_batch_is_written_at_once(tmp_path) -> None:
    target = tmp_path / "tee.jsonl"
    target.write_text('{"id": "old"}\n')
    sink = JsonLinesSink.from_target(str(target), None)
    asyncio.run(sink.write_batch([alert(1)], []))
    assert [json.loads(line)["id"] for line in target.read_text().splitlines()] == ["old", "id-1"]
    write(sink, [alert(2)], complete=False)
    assert [json.loads(line)["id"] for line in target.read_text().splitlines()] == ["old", "id-1", "id-2"]


def test_a_path_that_cannot_be_written_is_refused_when_the_sink_is_made(tmp_path) -> None:
    with pytest.raises(OutputFileError, match="cannot write .*nowhere/alerts.jsonl"):
        JsonLinesSink(str(tmp_path / "nowhere" / "alerts.jsonl"))
