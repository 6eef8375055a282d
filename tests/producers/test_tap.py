"""``trainsentry tap``: output passes through untouched, lines become log events, signals pass on."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.producers.kafka_records import read_records
from trainsentry.consumers.broker import free_port
from trainsentry.producers import tap as tap_module
from trainsentry.producers.tap import main
from trainsentry.protocol import LogEvent

CHILD = textwrap.dedent("""
    import os, sys, time
    out, err = 1, 2
    os.write(out, b"plain line\\n")
    os.write(out, ("trial=" + os.environ["TRAINSENTRY_TRIAL"] + "\\n").encode())
    os.write(err, b"warning: careful\\n")
    for pct in (b" 10%", b" 50%"):
        os.write(out, b"progress" + pct + b"\\r")
        time.sleep(0.01)
    os.write(out, b"progress 100%\\n")
    os.write(out, b"windows line\\r\\n")
    os.write(out, b"bad \\xff utf8\\n")
    os.write(err, b"err without newline")
    os.write(out, b"no newline at the end")
    sys.exit(3)
""")

STDOUT = (b"plain line\ntrial=tap-1\nprogress 10%\rprogress 50%\rprogress 100%\nwindows line\r\n"
          b"bad \xff utf8\nno newline at the end")
STDERR = b"warning: careful\nerr without newline"


def tap(*args: str, **kwargs) -> subprocess.Popen:
    # stdin is not a terminal here, as under a scheduler: a terminal's Ctrl-C would reach the
    # command directly, and the tap does not pass SIGINT on a second time.
    return subprocess.Popen([sys.executable, "-m", "trainsentry.producers.tap", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            **kwargs)


def test_output_passes_through_byte_for_byte_and_every_line_is_published(
        tmp_path: Path, bootstrap_servers: str, topics) -> None:
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    process = tap("--trial", "tap-1", "--worker", "w7", "--bootstrap-servers", bootstrap_servers,
                  "--topic-prefix", topics.prefix, "--", sys.executable, str(child))
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 3
    assert stdout == STDOUT
    assert stderr == STDERR
    events = [event for _, event in read_records(bootstrap_servers, topics.logs, 10)]
    assert all(isinstance(e, LogEvent) and e.trial == "tap-1" and e.worker == "w7" for e in events)
    lines = {stream: [(e.seq, e.line) for e in events if e.stream == stream]
             for stream in ("stdout", "stderr")}
    assert lines["stdout"] == list(enumerate([
        "plain line", "trial=tap-1", "progress 10%", "progress 50%", "progress 100%",
        "windows line", "bad \ufffd utf8", "no newline at the end"]))
    # The last event is the worker's end marker: the sidecar may release the trial's state.
    assert lines["stderr"] == [(0, "warning: careful"), (1, "err without newline"),
                               (2, "[trainsentry] command exited with code 3")]
    assert [e.final for e in events if e.final] == [True]
    assert events[-1].final and events[-1].stream == "stderr"


@pytest.mark.parametrize("sig, expected", [(signal.SIGTERM, 7), (signal.SIGINT, 128 + signal.SIGINT)])
def test_signals_reach_the_command_and_its_exit_code_comes_back(tmp_path: Path, sig: int, expected: int) -> None:
    child = tmp_path / "child.py"
    child.write_text(textwrap.dedent("""
        import signal, sys, time
        def on_term(signum, frame):
            print("got SIGTERM", flush=True)
            sys.exit(7)
        signal.signal(signal.SIGTERM, on_term)
        print("ready", flush=True)
        time.sleep(60)
    """))
    # No broker at all: the tap says so on stderr and works anyway.
    process = tap("--trial", "sig", "--bootstrap-servers", f"127.0.0.1:{free_port()}", "--",
                  sys.executable, str(child))
    assert process.stdout.readline() == b"ready\n"
    process.send_signal(sig)
    stdout, _ = process.communicate(timeout=30)
    assert process.returncode == expected
    if sig == signal.SIGTERM:
        assert stdout == b"got SIGTERM\n"


def test_a_command_killed_by_a_signal_exits_with_128_plus_the_signal() -> None:
    process = tap("--trial", "kill", "--bootstrap-servers", f"127.0.0.1:{free_port()}", "--",
                  sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    process.communicate(timeout=30)
    assert process.returncode == 128 + signal.SIGKILL


def test_usage_errors_are_one_line_and_exit_code_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["--trial", "x"]) == 2
    assert "no command given" in capsys.readouterr().err
    assert main(["--", "true"]) == 2  # --trial is required
    assert "--trial" in capsys.readouterr().err
    assert main(["--trial", "x", "--bootstrap-servers", f"127.0.0.1:{free_port()}", "--",
                 os.path.join("/nonexistent", "train.py")]) == 127
    assert "cannot run" in capsys.readouterr().err


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The commands the tap tried to start; none is (it cannot be found, says the stand-in)."""
    commands: list[list[str]] = []

    def popen(command, **kwargs):
        commands.append(command)
        raise FileNotFoundError(2, "not started by this test")

    monkeypatch.setattr(tap_module.subprocess, "Popen", popen)
    return commands


@pytest.mark.parametrize("option, value", [
    ("--trial", ""),
    ("--trial", "t" * 257),
    ("--trial", "bad-\udcff-bytes"),  # argv bytes that are not UTF-8
    ("--worker", ""),
    ("--worker", "w" * 129),
])
def test_a_bad_trial_or_worker_is_one_line_and_the_command_never_starts(
        started: list[list[str]], capsys: pytest.CaptureFixture, option: str, value: str) -> None:
    args = {"--trial": "ok", "--worker": "0", option: value}
    code = main(["--trial", args["--trial"], "--worker", args["--worker"],
                 "--bootstrap-servers", f"127.0.0.1:{free_port()}", "--", "true"])

    err = capsys.readouterr().err
    assert code == 2
    assert started == []
    assert err.count("\n") == 1 and "Traceback" not in err
    assert option in err and repr(value) in err


def test_a_trial_and_worker_at_their_longest_start_the_command(
        started: list[list[str]], capsys: pytest.CaptureFixture) -> None:
    assert main(["--trial", "t" * 256, "--worker", "w" * 128, "--", "true"]) == 127
    assert started == [["true"]]
    assert "cannot run" in capsys.readouterr().err


@pytest.mark.parametrize("options, named", [
    (["-X", "ssl.ca.locaton=/etc/ca.pem"], "'ssl.ca.locaton': unknown property"),
    (["-X", "security.protocol"], "'security.protocol': expected KEY=VALUE"),
    (["-X", "security.protocol=TLS"], "'security.protocol': expected one of"),
    (["-X", "security.protocol=SSL", "-X", "ssl.ca.location=/nonexistent/ca.pem"],
     "'ssl.ca.location': no such file: /nonexistent/ca.pem"),
    (["-X", "sasl.mechanism=SCRAM-SHA-512", "-X", "sasl.password=pw-not-shown"],
     "'sasl.username': SASL mechanism SCRAM-SHA-512 needs a username"),
    (["--kafka-config", "/nonexistent/client.properties"],
     "'/nonexistent/client.properties': cannot read the properties file"),
])
def test_a_kafka_property_that_cannot_work_is_one_line_naming_it_and_the_command_never_starts(
        started: list[list[str]], capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
        options: list[str], named: str) -> None:
    monkeypatch.delenv("TRAINSENTRY_KAFKA_CONFIG", raising=False)
    code = main(["--trial", "ok", "--bootstrap-servers", f"127.0.0.1:{free_port()}", *options,
                 "--", "true"])

    err = capsys.readouterr().err
    assert code == 2
    assert started == []
    assert err.startswith(f"trainsentry tap: Kafka property {named}")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "pw-not-shown" not in err


def test_the_command_inherits_how_to_connect(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KAFKA_SSL_CA_LOCATION", raising=False)
    config = tmp_path / "client.properties"
    config.write_text("client.id=from-the-file\n")
    environments: list[dict[str, str]] = []

    def popen(command, env, **kwargs):
        environments.append(env)
        raise FileNotFoundError(2, "not started by this test")

    monkeypatch.setattr(tap_module.subprocess, "Popen", popen)
    monkeypatch.chdir(tmp_path)
    assert main(["--trial", "ok", "--kafka-config", "client.properties", "-X",
                 "client.id=from-the-command-line", "--", "true"]) == 127
    env = environments[0]
    assert env["TRAINSENTRY_KAFKA_CONFIG"] == str(config)  # absolute: the command may change directory
    assert env["KAFKA_CLIENT_ID"] == "from-the-command-line"  # over the file, as for the tap itself
