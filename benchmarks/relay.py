"""The floor any sidecar has: consume each event and publish it to another topic, nothing else.

Run as ``python -m benchmarks.relay BOOTSTRAP SOURCE TARGET --group-id G``. It consumes as the
sidecar does (a consumer group, the sidecar's fetch settings and ``max_records``) and publishes as
the sidecar's sink does (``acks="all"``, the same ``linger_ms``), but decodes nothing, evaluates
nothing, does not wait for acknowledgements and commits nothing.

``--marked-only`` publishes only the records that carry the :data:`MARK` header: the producer marks
the events an alert follows, so the relay's output is as small as the sidecar's while it still
consumes every event.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from benchmarks import cluster

MARK = ("trips", b"1")  # the header of the records a marked-only relay forwards


async def relay(bootstrap_servers: str, source: str, target: str, group_id: str, fetch_max_wait_ms: int,
                marked_only: bool, stop: asyncio.Event) -> None:
    settings = cluster.sidecar_settings(bootstrap_servers, group_id=group_id,
                                        fetch_max_wait_ms=fetch_max_wait_ms)
    consumer = AIOKafkaConsumer(
        source, bootstrap_servers=bootstrap_servers, group_id=group_id, enable_auto_commit=False,
        auto_offset_reset="earliest", session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms, **cluster.fetch_options(settings))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all",
                                linger_ms=settings.linger_ms, max_request_size=settings.max_request_bytes)
    await producer.start()
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=settings.max_batch_records)
            for records in batch.values():
                for record in records:
                    if not marked_only or MARK in record.headers:
                        await producer.send(target, record.value, key=record.key)
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relay", description=__doc__)
    parser.add_argument("bootstrap_servers")
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("--group-id", required=True)
    parser.add_argument("--fetch-max-wait-ms", type=int, default=20)
    parser.add_argument("--marked-only", action="store_true",
                        help=f"publish only the records with the header {MARK[0]}={MARK[1].decode()}")
    args = parser.parse_args()

    async def run() -> None:
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await relay(args.bootstrap_servers, args.source, args.target, args.group_id,
                    args.fetch_max_wait_ms, args.marked_only, stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
