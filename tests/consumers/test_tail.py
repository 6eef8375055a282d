"""``trainsentry tail``: where it starts, its filters, a replayed topic, odd names, colour."""

from __future__ import annotations

import asyncio
import io
import logging
import subprocess
import sys
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from trainsentry.consumers.notify.filters import AlertFilter
from trainsentry.consumers.notify.severity import Severity
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.tail import TailPrinter, follow_alerts, tail_line
from trainsentry.protocol import AlertEvent, encode

T0 = 1_764_670_000.0


def alert(trial: str, step: int, rule: str = "loss", severity: str | None = None, **fields) -> AlertEvent:
    base = dict(trial=trial, ts=T0 + step, id=f"{trial}-{rule}-{step}", rule=rule,
                rule_type="LossNotDecreasing", mode="TRAIN", step=step, tensors=("loss",),
                message=f"stalled at {step}", details={}, event_ts=T0 + step, severity=severity)
    return AlertEvent(**{**base, **fields})


async def publish(servers: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainsentry.consumers.cli", "tail", *args],
                          capture_output=True, text=True, timeout=60)


async def test_from_now_shows_only_what_comes_after(bootstrap_servers, topics, caplog) -> None:
    caplog.set_level(logging.INFO, logger="trainsentry.tail")
    await publish(bootstrap_servers, topics.alerts, [encode(alert("old", s)) for s in range(3)])
    settings = KafkaSettings(bootstrap_servers, topics=topics)
    shown: list[AlertEvent] = []
    follower = asyncio.create_task(follow_alerts(settings, shown.append, start="now", limit=1))
    deadline = asyncio.get_running_loop().time() + 30
    while "from now" not in caplog.text:
        assert not follower.done() and asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    assert "3 earlier alert(s) not shown" in caplog.text
    await publish(bootstrap_servers, topics.alerts, [encode(alert("old", 0)), encode(alert("new", 1))])
    assert await asyncio.wait_for(follower, 30) == 1
    assert [a.trial for a in shown] == ["new"]  # the repeat of an old alert is still old


def test_from_beginning_filters_a_replayed_topic_and_prints_one_safe_line_each(bootstrap_servers) -> None:
    topic = f"review-{datetime.now().strftime('%H%M%S%f')}.alerts"
    asyncio.run(publish(bootstrap_servers, topic, [
        encode(alert("run\n1\x00", 1, severity="error", tensors=("fc1\x1b[31m.weight",))),
        encode(alert("run-2", 2, severity="info")),
        encode(alert("run-3", 3, rule="other", severity="error", rule_type="WeightUpdateRatio")),
        b"\xc1 garbage",
        encode(alert("run-4", 4)),  # no severity: a warning
    ]))
    done = cli("--bootstrap-servers", bootstrap_servers, "--topic", topic, "--from", "beginning",
               "--no-follow", "--rule", "LossNotDecreasing", "--min-severity", "warning")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and "\x1b" not in done.stdout  # piped: no colour, no escape reaches it
    assert " ERROR loss (LossNotDecreasing) trial=run\\n1\\x00 worker=0 TRAIN step 1 " \
           "[fc1\\x1b[31m.weight]: stalled at 1" in lines[0]
    assert " WARNING loss (LossNotDecreasing) trial=run-4 " in lines[1]
    assert "skipping" in done.stderr and "Traceback" not in done.stderr
    since = datetime.fromtimestamp(T0 + 3, UTC).isoformat()
    done = cli("--bootstrap-servers", bootstrap_servers, "--topic", topic, "--from", since, "--no-follow")
    assert [line.split(" trial=")[1].split()[0] for line in done.stdout.splitlines()] == ["run-3", "run-4"]


def test_colour_by_severity_on_a_terminal_only(monkeypatch) -> None:
    plain = io.StringIO()
    TailPrinter(stream=plain)(alert("run-1", 1, severity="error"))
    assert "\x1b[" not in plain.getvalue() and " ERROR " in plain.getvalue()
    monkeypatch.setenv("FORCE_COLOR", "1")  # what a terminal gets
    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = io.StringIO()
    printer = TailPrinter(stream=coloured)
    printer(alert("run-1", 1, severity="error"))
    printer(alert("run-1", 2, severity="info"))
    first, second = coloured.getvalue().splitlines()
    assert first.startswith("\x1b[1;31m") and second.startswith("\x1b[36m")
    monkeypatch.setenv("NO_COLOR", "1")
    none = io.StringIO()
    TailPrinter(stream=none)(alert("run-1", 1, severity="error"))
    assert "\x1b[" not in none.getvalue()


def test_a_line_is_one_line_whatever_the_names_hold() -> None:
    evil = alert("a\nb\r\u2028c", 1, message="two\nlines", worker="w\x00")
    assert "\n" not in tail_line(evil) and "\u2028" not in tail_line(evil)


def test_the_filter_matches_name_or_type_and_severity() -> None:
    keep = AlertFilter.of(rules=["LossNotDecreasing"], min_severity=Severity.WARNING)
    assert keep.keeps(alert("t", 1, rule="custom-name"), Severity.WARNING)
    assert not keep.keeps(alert("t", 1), Severity.INFO)


def test_a_bad_from_is_one_line() -> None:
    done = cli("--from", "yesterday")
    assert done.returncode == 2 and "--from" in done.stderr and "Traceback" not in done.stderr
