import asyncio
import os
import subprocess
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from trainsentry.consumers.broker import BrokerError, EmbeddedBroker, ensure_topics, free_port


def test_embedded_broker_starts_serves_and_stops_without_leftovers() -> None:
    broker = EmbeddedBroker().start()
    pid = broker.process.pid

    async def roundtrip() -> bytes:
        await ensure_topics(broker.bootstrap_servers, ["roundtrip"], partitions=1)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        await producer.start()
        await producer.send_and_wait("roundtrip", b"hello", key=b"k")
        await producer.stop()
        consumer = AIOKafkaConsumer("roundtrip", bootstrap_servers=broker.bootstrap_servers,
                                    auto_offset_reset="earliest", fetch_max_wait_ms=20)
        await consumer.start()
        try:
            record = await asyncio.wait_for(consumer.getone(), 10)
        finally:
            await consumer.stop()
        return record.value

    try:
        assert asyncio.run(roundtrip()) == b"hello"
    finally:
        broker.stop()
    assert not os.path.exists(f"/proc/{pid}") or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_unreachable_cluster_is_one_clear_error() -> None:
    with pytest.raises(BrokerError, match="cannot reach Kafka at '127.0.0.1:"):
        asyncio.run(ensure_topics(f"127.0.0.1:{free_port()}", ["x"], timeout=2))


def test_broker_dies_with_its_parent(tmp_path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys\n"
        "from trainsentry.consumers.broker import EmbeddedBroker\n"
        "b = EmbeddedBroker().start()\n"
        "print(b.process.pid, flush=True)\n"
        "os.kill(os.getpid(), 9)\n")
    out = subprocess.run([os.sys.executable, str(script)], capture_output=True, text=True, timeout=30)
    pid = int(out.stdout.split()[0])
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}"):
            break
        asyncio.run(asyncio.sleep(0.05))
    assert not os.path.exists(f"/proc/{pid}")
