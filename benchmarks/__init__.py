"""The benchmark harness: ``make bench`` (``python -m benchmarks``).

Each module measures one thing against a baseline taken on the same machine in the same run:

==================  ==========================================================  =====================
module              measures                                                    beside
==================  ==========================================================  =====================
``throughput``      the live sidecar (``Sidecar`` over a real consumer group)   a bare aiokafka loop
``replay_speed``    ``trainsentry replay``'s path over a file, one core         a bare msgpack loop
``latency``         producer send -> alert at a subscriber, p50 / p99           a minimal relay
``producer``        training-side hook overhead and publish cost                (its own baseline)
``memory``          RSS of a sidecar holding 100 x 50 weight tensors            the bytes of state
==================  ==========================================================  =====================

The harness starts an embedded broker unless ``KAFKA_BOOTSTRAP_SERVERS`` names one, prints a table,
and rewrites the figures section of ``BENCHMARKS.md``. Targets are reported, never asserted.
"""
