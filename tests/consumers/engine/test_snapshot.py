"""Snapshots: an engine restored from another's snapshot goes on exactly as the other does.

Bounded recovery rests on this: a sidecar that takes a partition over restores the newest snapshot
and reads only the records after it, and must then produce the same alerts, ids included, as the
member that never stopped. Every built-in rule is configured (with ``stop_at_first`` too), with
metric definitions and an objective, over a stream of two trials, two workers and every kind of
tensor the rules read.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from trainsentry.consumers.engine import Engine
from trainsentry.consumers.engine.snapshot import _plain_key, schema_of
from trainsentry.consumers.engine.trial import FIRED
from trainsentry.consumers.state import SnapshotError, decode_snapshot, encode_snapshot
from trainsentry.consumers.state.snapshot import FORMAT_VERSION, MAGIC, _checksum, _schema_digest
from trainsentry.protocol import AlertEvent, Event, LogEvent, MetricEvent, ScalarEvent, TensorEvent
from trainsentry.rules.config import Config, RuleConfig
from trainsentry.rules.metrics import MetricDefinition
from trainsentry.rules.objective import Objective
from trainsentry.rules.registry import RULES

T0 = 1_700_000_000.0
# The rules the stream below is written to make fire (every rule is configured all the same).
FIRING = {"LossNotDecreasing", "WeightUpdateRatio", "SaturatedActivation", "PoorWeightInitialization",
          "ExplodingTensor", "VanishingGradient", "DeadRelu", "UnchangedTensor", "AllZero",
          "TensorVariance", "Overfit", "Overtraining", "ClassImbalance"}
# The rules that select nothing by default, made to read the stream's tensors.
PARAMS = {"ExplodingTensor": {"tensor_regex": ".*"}, "UnchangedTensor": {"tensor_regex": "weight"},
          "AllZero": {"tensor_regex": ".*"},
          "TensorVariance": {"tensor_regex": ".*", "max_threshold": 10.0, "min_threshold": 1e-6}}


def every_rule() -> Config:
    rules = []
    for rule_type in RULES:
        params = PARAMS.get(rule_type, {})
        rules.append(RuleConfig.of(rule_type, None, **params))
        rules.append(RuleConfig.of(rule_type, f"{rule_type}-first", stop_at_first=True, **params))
    return Config(rules=tuple(rules),
                  metrics=(MetricDefinition("acc", r"acc=(\S+?);"),
                           MetricDefinition("val_loss", r"val_loss=(\S+?);")),
                  objective=Objective("acc", "Maximize"))


def training_stream() -> list[Event]:
    """Two trials of two workers: losses, weights, gradients, activations, labels and log lines."""
    rng = np.random.default_rng(7)
    out: list[Event] = []
    for trial in ("a", "b"):
        for worker in ("0", "1"):
            weights = rng.normal(size=(4, 4)).astype(np.float32)
            seq = 0
            for step in range(40):
                ts = T0 + step

                def tensor(name, data, collections=(), trial=trial, worker=worker, step=step):
                    out.append(TensorEvent.from_array(
                        np.asarray(data), trial=trial, ts=T0 + step, mode="TRAIN", step=step,
                        name=name, worker=worker, global_step=step, collections=collections))

                loss = 1.0 / (1 + step) if (step // 8) % 2 == 0 else 0.5 + 0.01 * step
                if trial == "b" and step == 30:
                    loss = math.nan
                out.append(ScalarEvent(trial, ts, "TRAIN", step, "loss", loss, worker, step, ("losses",)))
                if step % 2:
                    out.append(ScalarEvent(trial, ts, "EVAL", step // 2, "loss", 0.3 + 0.05 * step,
                                           worker, step, ("losses",)))
                if trial == "a" or step < 10:  # b's weights freeze
                    weights = weights + rng.normal(scale=0.05 if step % 5 else 2.0,
                                                   size=(4, 4)).astype(np.float32)
                tensor("fc.weight", weights, ("weights",))
                gradient = rng.normal(scale=1e-9 if step > 20 else 1e-2, size=(4, 4))
                tensor("fc.weight.grad", np.zeros((4, 4)) if step % 9 == 4 else gradient, ("gradients",))
                tensor("l1.relu_input", rng.normal(size=(8, 4)))
                tensor("l2.relu_input", rng.normal(scale=0.01 if step < 6 else 1.0, size=(8, 4)))
                dead = -np.abs(rng.normal(size=(8, 4))) if step % 5 == 0 else rng.normal(size=(8, 4))
                tensor("l3.relu_input", dead)
                tensor("l1.tanh_input", np.full((8, 4), 12.0) if step % 3 == 0 else rng.normal(size=(8, 4)))
                labels = rng.integers(0, 3 if step < 20 else 2, size=64).astype(np.float32)
                if trial == "b":
                    labels[:60] = 0
                tensor("labels", labels)
                tensor("predictions", np.where(rng.random(64) < 0.5, labels, 1 - labels).astype(np.float32))
                out.append(LogEvent(trial, ts, "stdout", f"epoch {step} acc={0.5 + 0.01 * step:.3f};",
                                    seq, worker))
                seq += 1
                if step % 4 == 0:
                    out.append(LogEvent(trial, ts, "stdout", f"val_loss={0.4 + (step % 7) * 0.01};",
                                        seq, worker))
                    seq += 1
            out.append(LogEvent(trial, T0 + 99, "stderr", "[trainsentry] end of worker", 0, worker,
                                final=True))
    out.sort(key=lambda e: (e.ts, e.trial, e.worker))  # stable: each series keeps its order
    return out


STREAM = training_stream()
CUTS = [0, 1, 97, len(STREAM) // 3, len(STREAM) // 2, 3 * len(STREAM) // 4, len(STREAM) - 1]


def test_the_stream_makes_every_rule_it_was_written_for_fire_and_stop():
    out = Engine(every_rule()).process_many(STREAM)
    fired = {a.rule for a in out if isinstance(a, AlertEvent)}
    quiet = {rule.name for rule in every_rule().rules if rule.rule_type in FIRING} - fired
    assert quiet == set()
    assert {m.name for m in out if isinstance(m, MetricEvent)} == {"acc", "val_loss"}


@pytest.mark.parametrize("cut", CUTS)
def test_an_engine_restored_mid_stream_gives_the_same_outputs_as_the_one_that_went_on(cut):
    config = every_rule()
    going_on = Engine(config)
    going_on.process_many(STREAM[:cut])
    going_on.drain_ended(), going_on.drain_notices()  # as a driver does after each batch
    held = going_on.trials()
    snapshot = going_on.snapshot(held)
    expected = going_on.process_many(STREAM[cut:])
    restored = Engine(config)
    assert restored.restore(snapshot) == held
    assert restored.process_many(STREAM[cut:]) == expected
    assert restored.drain_ended() == going_on.drain_ended()
    assert restored.drain_notices() == going_on.drain_notices()  # nothing said twice for a trial
    ranking = [(r.trial, r.final, r.best) for r in restored.objectives.ranking()]
    assert ranking == [(r.trial, r.final, r.best) for r in going_on.objectives.ranking()]


def test_a_snapshot_of_some_trials_restores_those_and_replaces_what_was_held():
    config = every_rule()
    engine = Engine(config)
    engine.process_many(STREAM[:600])
    only_b = engine.snapshot(["b", "never-seen"])
    other = Engine(config)
    other.process_many([e for e in STREAM[:900] if e.trial == "b"])  # b further on than the snapshot
    assert other.restore(only_b) == ["b"]
    assert other.trials() == ["b"]
    rest = [e for e in STREAM[600:] if e.trial == "b"]
    assert other.process_many(rest) == engine.process_many(rest)


def test_a_restored_trial_is_sized_and_forgotten_like_any_other():
    engine = Engine(every_rule())
    engine.process_many(STREAM[:800])
    restored = Engine(every_rule())
    empty = restored.state_bytes()
    restored.restore(engine.snapshot(engine.trials()))
    assert restored.state_bytes() > empty + 10_000
    for trial in restored.trials():
        restored.forget_trial(trial)
    assert restored.trials() == [] and restored.state_bytes() == empty


def _taken() -> tuple[Engine, bytes]:
    engine = Engine(every_rule())
    engine.process_many(STREAM[:500])
    return engine, engine.snapshot(engine.trials())


def _restoring(data: bytes, config: Config | None = None) -> str:
    engine = Engine(config or every_rule())
    with pytest.raises(SnapshotError) as raised:
        engine.restore(data)
    assert engine.trials() == [] and engine.state_bytes() == Engine(config or every_rule()).state_bytes()
    return str(raised.value)


def test_bytes_that_are_not_a_snapshot_raise_one_clear_error():
    _, data = _taken()
    assert "does not start with a trainsentry state header" in _restoring(b"")
    assert "does not start with a trainsentry state header" in _restoring(b"{}" * 100)
    assert "does not start with" in _restoring(data[8:])
    assert "checksum does not match" in _restoring(data[:-1])
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0x01
    assert "checksum does not match" in _restoring(bytes(flipped))


def test_a_snapshot_of_another_format_or_configuration_is_refused():
    _, data = _taken()
    newer = data[:len(MAGIC)] + (99).to_bytes(2, "big") + data[len(MAGIC) + 2:]
    assert "has format 99; this version of trainsentry reads format 1" in _restoring(newer)
    other = Config(rules=(RuleConfig.of("LossNotDecreasing", num_steps=3),))
    assert "another version of trainsentry or with another configuration" in _restoring(data, other)


def _forged(payload: bytes, config: Config | None = None) -> bytes:
    """A snapshot whose header and checksum are right for ``payload``: what an attacker can make."""
    schema = schema_of(config or every_rule())
    return b"".join((MAGIC, FORMAT_VERSION.to_bytes(2, "big"), _schema_digest(schema),
                     _checksum(payload), payload))


def _encoded(payload: object) -> bytes:
    """``payload`` encoded as the engine encodes snapshots: a well-formed snapshot of anything."""
    return encode_snapshot(payload, schema=schema_of(every_rule()))


class _RunsCode:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_forged_snapshots_cannot_run_code_or_smuggle_types(capsys):
    assert "holds builtins.print" in _restoring(_forged(pickle.dumps(_RunsCode())))
    assert "holds os.system" in _restoring(_forged(b"cos\nsystem\n(S'echo forged'\ntR."))
    assert capsys.readouterr().out == ""
    # well-formed pickles of the wrong shape
    assert "no list of trials" in _restoring(_forged(pickle.dumps({"trials": "x"})))
    assert "not (id, record, tables)" in _restoring(_forged(pickle.dumps({"trials": [("a", [])]})))
    assert "has no record" in _restoring(_forged(pickle.dumps({"trials": [("a", None, [])]})))
    engine, data = _taken()
    (trial, book, tables), = engine.store.dump(["a"])
    assert "unknown slot" in _restoring(_encoded({"trials": [(trial, book, [("nope", False, [])])]}))
    wrong_type = [(slot, fixed, [(key, "text") for key, _ in entries]) for slot, fixed, entries in tables]
    assert "holds a str" in _restoring(_encoded({"trials": [(trial, book, wrong_type)]}))
    assert "last steps are missing" in _restoring(_encoded({"trials": [(trial, book, [])]}))
    assert "a slot comes twice" in _restoring(_encoded({"trials": [(trial, book, tables + tables[:1])]}))
    book.workers = ["0"]  # a list where the engine keeps a tuple
    assert "malformed one" in _restoring(_encoded({"trials": [(trial, book, tables)]}))
    book.workers = ("0",)
    fired = next(entries for slot, _, entries in tables if slot == FIRED)
    fired[0][1].heap = "3"
    assert "malformed alerted steps" in _restoring(_encoded({"trials": [(trial, book, tables)]}))
    deep_key = ()
    for _ in range(50):
        deep_key = (deep_key,)
    nested = [(slot, fixed, [(deep_key, value) for _, value in entries]) if slot == "last step"
              else (slot, fixed, entries) for slot, fixed, entries in tables]
    assert "is not a tuple of str and int" in _restoring(_encoded({"trials": [(trial, book, nested)]}))
    assert "holds numpy._core.multiarray._reconstruct" in _restoring(_forged(pickle.dumps(
        {"trials": [(trial, book, tables)]})))  # numpy's own pickling calls functions: only ours rebuild arrays
    assert "bytes follow its end" in _restoring(_forged(pickle.dumps({"trials": []}) + b"\x00"))
    assert "is corrupt" in _restoring(_forged(b"\x80\x05garbage"))


def test_a_key_nested_a_hundred_thousand_deep_is_refused_without_recursion():
    # pickle opcodes build such a tuple without recursing; hashing or printing it would overflow
    deep = decode_snapshot(_forged(b"\x80\x02)" + b"\x85" * 100_000 + b"."), schema=schema_of(
        every_rule()), classes=())
    assert type(deep) is tuple and not _plain_key(deep)
    assert _plain_key(("0", "TRAIN", "loss")) and _plain_key((3, "0", None))
