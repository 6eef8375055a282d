"""One poison record of each kind in the input of a consumer group of two sidecars: both members
live, every poison record reaches the dead-letter topic in a letter that fits, and the alerts of
the valid events are exactly the engine's. A valid event at step 2^63 - 1 among them changes none
of those alerts."""

from __future__ import annotations

import struct

from tests.sidecar_harness import SidecarProcess, publish, read_alerts, read_dead_letters
from tests.streams import losses, replay_alerts, write_config
from trainsentry.protocol import ScalarEvent, encode

MIB = 1024 * 1024
VECTOR = [0.3, 0.33, 0.31, 0.30, 0.28]
SCALAR = {"v": 1, "type": "scalar", "trial": "run-p", "ts": 1.0, "mode": "TRAIN", "step": 0,
          "name": "loss", "value": 0.5, "collections": ["losses"]}


def with_raw_field(raw: bytes) -> bytes:
    """The scalar above with one more field whose value is the msgpack ``raw``."""
    return encode({**SCALAR, "extra": None})[:-1] + raw


def poison() -> list[tuple[bytes | None, bytes, str]]:
    """(key, value, what the reason says) of one record of each class of fault."""
    alert = {"v": 1, "type": "alert", "trial": "run-p", "ts": 1.0, "id": "x", "rule": "r",
             "rule_type": "r", "mode": "TRAIN", "step": 1, "tensors": [], "message": "m",
             "event_ts": 1.0, "details": None}
    zero = {"v": 1, "type": "tensor", "trial": "run-p", "ts": 1.0, "mode": "TRAIN", "step": 1,
            "name": "fc1.weight", "collections": ["weights"], "dtype": "float32",
            "shape": [0] + [2**31 - 1] * 31, "data": b""}
    count = 16 * MIB
    return [
        (b"run-p", with_raw_field(b"\x91" * 1000 + b"\xc0"), "nested deeper than"),
        (b"run-p", encode(alert)[:-1] + b"\x81\xa1k" + b"\x91" * 1020 + b"\xc0", "nested deeper than"),
        (b"k" * (12 * MIB), encode(SCALAR), "is not the trial"),
        (b"run-p", with_raw_field(b"\xdd" + struct.pack(">I", count) + b"\x90" * count), "more than"),
        (None, encode(SCALAR), "field 'key': missing"),
        (b"run-p", with_raw_field(b"\xd6\xff" + b"\x00" * 4), "extension values are not allowed"),
        (b"run-p", encode(zero), "evaluation failed"),
    ]


def test_two_sidecars_survive_one_poison_record_of_each_kind(bootstrap_servers, topics, tmp_path) -> None:
    config = write_config(tmp_path)
    events = losses("run-p", VECTOR)
    stray = ScalarEvent("run-p", events[1].ts, "TRAIN", 2**63 - 1, "loss", 0.1, collections=("losses",))
    bad = poison()
    group = f"poison-{topics.prefix}"
    members = [SidecarProcess(bootstrap_servers, topics, config, group_id=group).start() for _ in range(2)]
    try:
        for member in members:
            member.wait_ready()
        publish(bootstrap_servers, topics, events[:2] + [stray])
        for key, value, _ in bad:
            publish(bootstrap_servers, topics, [value], key=key)
        publish(bootstrap_servers, topics, events[2:])
        alerts = read_alerts(bootstrap_servers, topics, count=1, timeout=60)
        letters = read_dead_letters(bootstrap_servers, topics, count=len(bad), timeout=60)
        for member in members:
            assert member.process.poll() is None, member.stderr
    finally:
        codes = [member.stop() for member in members]
    assert codes == [0, 0], [m.stderr for m in members]
    assert {a.id: a for a in alerts} == replay_alerts(config, events)
    assert replay_alerts(config, events[:2] + [stray] + events[2:]) == replay_alerts(config, events)
    assert len(letters) == len(bad)
    assert all(len(letter["reason"]) < 400 for letter in letters)
    reasons = " | ".join(sorted(letter["reason"] for letter in letters))
    for _, _, says in bad:
        assert says in reasons, reasons
    cut = [letter for letter in letters if letter.get("key_truncated")]
    assert len(cut) == 1 and cut[0]["key_bytes"] == 12 * MIB and len(cut[0]["key"]) == 1024
    assert all(len(letter["value"] or b"") <= 960 * 1024 for letter in letters)
    for member in members:
        assert "Traceback" not in member.stderr
