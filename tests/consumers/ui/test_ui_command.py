"""``trainsentry ui``'s own mistakes are one line and exit code 2, before anything is served."""

from __future__ import annotations

import socket

import pytest

from trainsentry.consumers.cli import main


def test_a_port_in_use_is_one_line(capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--port", str(port), "--bootstrap-servers", "127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert f"--port/--bind: cannot serve on 127.0.0.1:{port}" in err and err.count("\n") == 1


@pytest.mark.parametrize(("args", "says"), [
    (["--stalled-after", "0"], "--stalled-after: expected seconds > 0"),
    (["--points-per-series", "1"], "--points-per-series: expected at least 2"),
    (["--bootstrap-servers", "nohostport"], "--bootstrap-servers: expected HOST:PORT"),
    (["--config", "/no/such/rules.toml"], "cannot be read"),
])
def test_bad_options_are_one_line(capsys, args: list[str], says: str) -> None:
    assert main(["ui", "--port", "0", *args]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
