"""``trainsentry report`` straight from the topics of a real broker: same curves, same alerts."""

from __future__ import annotations

import re

from tests.sidecar_harness import publish
from trainsentry.consumers.cli import main
from trainsentry.protocol import FileReadResult, iter_file

from .known_run import TRIALS, write_known_run


def test_report_of_the_topics(bootstrap_servers, topics, tmp_path) -> None:
    replay, config = write_known_run(tmp_path)
    with open(replay, "rb") as stream:
        events = list(iter_file(stream, FileReadResult()))
    publish(bootstrap_servers, topics, [*events, b"\xc1 not msgpack"])
    output = tmp_path / "report.html"
    assert main(["report", "--bootstrap-servers", bootstrap_servers, "--topic-prefix", topics.prefix,
                 "--config", str(config), "--output", str(output)]) == 0
    html = output.read_text()
    for trial in TRIALS:
        section = html.split(f'data-trial="{trial}"', 1)[1].split("</section>", 1)[0]
        assert '<img class="curves"' in section and "loss did not decrease over 20 steps" in section
    assert re.search(r"invalid records or objects</td><td class=\"num\">1<", html)
    assert "not a msgpack record" in html
