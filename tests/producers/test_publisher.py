import math

import numpy as np
import pytest

from tests.producers.kafka_records import read_records
from tests.producers.recording_sender import RecordingSender
from trainsentry.producers import SaveConfig, SenderSettings, TensorPublisher
from trainsentry.producers.reductions import reduce_array
from trainsentry.protocol import LogEvent, ScalarEvent, TensorEvent


def recording_publisher(**kwargs) -> tuple[TensorPublisher, RecordingSender]:
    sender = RecordingSender(SenderSettings(topic_prefix="unit"))
    return TensorPublisher("run-1", worker="3", sender=sender, **kwargs), sender


def test_scalars_and_tensors_become_protocol_events_on_the_tensors_topic() -> None:
    publisher, sender = recording_publisher(save_config=SaveConfig(save_interval=1))
    weights = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert publisher.scalar("loss", np.float32(0.5), step=np.int64(7), global_step=9,
                            collections=["losses"])
    assert publisher.tensor("fc1.weight", weights, step=7, mode="EVAL", collections=("weights",))
    weights[:] = -1  # training goes on writing to its arrays: the published copy must not change

    (topic1, key1, loss), (topic2, key2, tensor) = sender.records
    assert topic1 == topic2 == "unit.tensors" and key1 == key2 == b"run-1"
    assert isinstance(loss, ScalarEvent)
    assert (loss.name, loss.value, loss.step, loss.global_step, loss.mode, loss.worker,
            loss.collections) == ("loss", 0.5, 7, 9, "TRAIN", "3", ("losses",))
    assert isinstance(tensor, TensorEvent) and tensor.mode == "EVAL"
    np.testing.assert_array_equal(tensor.array(), np.arange(6, dtype=np.float32).reshape(2, 3))


def test_only_saved_steps_are_published() -> None:
    publisher, sender = recording_publisher(save_config=SaveConfig(save_interval=10),
                                            collection_configs={"losses": SaveConfig(save_interval=2)})
    published = [step for step in range(12)
                 if publisher.scalar("loss", 1.0, step=step, collections=["losses"])]
    publisher.tensor("w", np.ones(2), step=5, collections=["weights"])
    assert published == [0, 2, 4, 6, 8, 10]
    assert [e.step for e in sender.events] == published
    assert publisher.should_save(20, "TRAIN", ["weights"]) and not publisher.should_save(21)


def test_big_tensors_are_sent_as_reductions() -> None:
    publisher, sender = recording_publisher(save_config=SaveConfig(save_interval=1),
                                            reductions_above_bytes=64)
    publisher.tensor("small", np.ones(4, dtype=np.float32), step=0)
    big = np.array([[1.0, -3.0], [0.0, 2.0]] * 8)
    publisher.tensor("big", big, step=0)
    small, reduced = sender.events
    assert small.data is not None and small.reductions is None
    assert reduced.data is None and reduced.shape is None
    assert reduced.reductions == reduce_array(big)
    assert reduced.reductions["variance"] == pytest.approx(np.var(big))
    assert reduced.reductions["count"] == 32.0


def test_reductions_are_those_a_rule_would_compute_from_the_bytes() -> None:
    values = np.array([1.0, np.nan, -2.0, np.inf], dtype=np.float16)
    reduced = reduce_array(values)
    assert reduced["nan_count"] == 1.0 and reduced["count"] == 4.0
    assert math.isnan(reduced["mean"]) and math.isnan(reduced["variance"])  # NaN is news
    assert reduce_array(np.array([3, 4], dtype=np.int8))["l2"] == 5.0


def test_log_lines_are_numbered_per_stream_from_zero() -> None:
    publisher, sender = recording_publisher()
    for line, stream in [("a", "stdout"), ("b", "stderr"), ("c", "stdout")]:
        publisher.log_line(line, stream=stream)
    assert [(t, e.stream, e.line, e.seq) for t, _, e in sender.records] == [
        ("unit.logs", "stdout", "a", 0), ("unit.logs", "stderr", "b", 0), ("unit.logs", "stdout", "c", 1)]
    assert all(isinstance(e, LogEvent) and e.worker == "3" for e in sender.events)


@pytest.mark.parametrize("call", [
    lambda p: p.scalar("loss", 1.0, step=0, mode="TRAINING"),
    lambda p: p.scalar("loss", 1.0, step=-1),
    lambda p: p.scalar("loss", 1.0, step=3, mode="GLOBAL", global_step=4),
    lambda p: p.tensor("w", np.ones(2, dtype=np.complex64), step=0),
    lambda p: p.log_line("x", stream="stdin"),
])
def test_a_mistake_in_the_call_fails_on_the_calling_thread(call) -> None:
    publisher, _ = recording_publisher(save_config=SaveConfig(save_interval=1))
    with pytest.raises((ValueError, TypeError)):
        call(publisher)


def test_the_environment_names_the_broker_topics_and_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9092")
    monkeypatch.setenv("TRAINSENTRY_TOPIC_PREFIX", "team")
    monkeypatch.setenv("RANK", "5")
    settings = SenderSettings()
    assert settings.resolved_bootstrap_servers() == "kafka.example:9092"
    publisher = TensorPublisher("run-1", sender=RecordingSender(settings))
    assert publisher.topics.tensors == "team.tensors" and publisher.worker == "5"


def test_events_arrive_decodable_keyed_by_trial_and_close_flushes(bootstrap_servers, topics) -> None:
    publisher = TensorPublisher("run-int", bootstrap_servers=bootstrap_servers, topic_prefix=topics.prefix,
                                save_config=SaveConfig(save_interval=1), reductions_above_bytes=1 << 20)
    weights = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
    for step in range(50):
        publisher.scalar("loss", 1.0 / (step + 1), step=step, collections=["losses"])
        publisher.tensor("fc1.weight", weights, step=step, collections=["weights"])
    publisher.tensor("huge", np.zeros((600, 600)), step=0)  # 2.9 MB: sent as reductions
    publisher.log_line("epoch 1 done")
    publisher.close()  # no flush() before: closing delivers what is buffered

    stats = publisher.stats()
    assert (stats.sent, stats.lost) == (102, 0)
    records = read_records(bootstrap_servers, topics.tensors, 101)
    assert len(records) == 101 and {key for key, _ in records} == {b"run-int"}
    losses = [e for _, e in records if isinstance(e, ScalarEvent)]
    assert [e.step for e in losses] == list(range(50))  # one partition per trial: in order
    tensors = {(e.name, e.step): e for _, e in records if isinstance(e, TensorEvent)}
    np.testing.assert_array_equal(tensors["fc1.weight", 49].array(), weights)
    assert tensors["huge", 0].reductions["count"] == 360000.0
    [(key, line)] = read_records(bootstrap_servers, topics.logs, 1)
    assert (key, line.line, line.seq) == (b"run-int", "epoch 1 done", 0)


def test_tensors_and_scalars_carry_the_process_session_and_a_forked_child_another() -> None:
    import os

    from trainsentry.producers.publisher import process_session

    sender = RecordingSender()
    pub = TensorPublisher("run-1", worker="0", sender=sender, save_config=SaveConfig(save_interval=1))
    pub.scalar("loss", 0.5, step=0)
    pub.tensor("w", np.ones(2, np.float32), step=0)
    pub.log_line("hello")
    scalar, tensor, line = sender.events
    assert scalar.session == tensor.session == process_session() and len(process_session()) == 16
    assert line.session and line.session != scalar.session  # a log's seq counts per publisher
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a forked writer is another writer
        os.write(write, process_session().encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 64).decode() not in ("", process_session())


def test_labels_and_predictions_for_class_imbalance() -> None:
    sender = RecordingSender()
    pub = TensorPublisher("run-1", worker="0", sender=sender,
                          save_config=SaveConfig(save_interval=2))
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], dtype=np.float32)
    assert pub.labels(np.array([1, 0, 0]), step=0) and pub.predictions(scores, step=0)
    assert pub.predictions(np.array([1, 0, 1]), step=0, mode="EVAL")    # class ids as they are
    assert pub.predictions(scores, step=0, mode="PREDICT", argmax=False)  # scores as they are
    assert not pub.predictions(scores, step=1) and not pub.labels(np.array([1]), step=1)
    labels, predicted, ids, raw = sender.events
    assert (labels.name, labels.collections, labels.array().tolist()) == ("labels", ("labels",),
                                                                          [1, 0, 0])
    assert (predicted.name, predicted.collections) == ("predictions", ("predictions",))
    assert predicted.array().tolist() == [1, 0, 1] and ids.array().tolist() == [1, 0, 1]
    assert raw.array().shape == (3, 2)
