import logging

import pytest

from tests.producers.kafka_records import read_records
from tests.producers.recording_sender import RecordingSender
from trainsentry.producers import SenderSettings, TensorPublisher, TrainsentryLogHandler


def test_each_line_of_a_record_is_one_log_event() -> None:
    publisher = TensorPublisher("run-1", sender=RecordingSender(SenderSettings()))
    handler = TrainsentryLogHandler(publisher=publisher)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tests.training")
    logger.addHandler(handler)
    try:
        logger.warning("epoch 3 loss=0.25;")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("step failed")
        logging.getLogger("aiokafka.conn").error("not sent: the Kafka client's own records")
    finally:
        logger.removeHandler(handler)
    events = publisher._sender.events
    assert events[0].line == "WARNING epoch 3 loss=0.25;"
    assert [e.line for e in events[1:3]] == ["ERROR step failed", "Traceback (most recent call last):"]
    assert events[-1].line == "RuntimeError: boom"
    assert [e.seq for e in events] == list(range(len(events)))
    assert {e.stream for e in events} == {"stderr"}


def test_without_a_trial_the_handler_says_what_it_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAINSENTRY_TRIAL", raising=False)
    with pytest.raises(ValueError, match="TRAINSENTRY_TRIAL"):
        TrainsentryLogHandler()


def test_records_reach_the_logs_topic(bootstrap_servers: str, topics) -> None:
    handler = TrainsentryLogHandler("logged-run", stream="stdout", bootstrap_servers=bootstrap_servers,
                                    topic_prefix=topics.prefix)
    logger = logging.getLogger("tests.training.kafka")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for step in range(3):
            logger.warning("step=%d loss=%.2f;", step, 1.0 / (step + 1))
    finally:
        logger.removeHandler(handler)
        handler.close()  # owns its publisher: closing flushes it
    records = read_records(bootstrap_servers, topics.logs, 3)
    assert [(key, e.stream, e.seq, e.line) for key, e in records] == [
        (b"logged-run", "stdout", 0, "step=0 loss=1.00;"),
        (b"logged-run", "stdout", 1, "step=1 loss=0.50;"),
        (b"logged-run", "stdout", 2, "step=2 loss=0.33;")]
