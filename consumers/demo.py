"""``trainsentry demo``: the whole product in a few seconds, on the embedded broker.

A synthetic training run publishes its loss, one layer's weights and its log lines through the
real producer library; the real sidecar runs beside it; alerts are followed from the alerts topic
and printed as they arrive, while training is still going. Everything is torn down at the end.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import time
import uuid
from typing import TYPE_CHECKING

import numpy as np

from trainsentry.consumers.alert_text import alert_line
from trainsentry.consumers.broker import EmbeddedBroker, delete_topics
from trainsentry.consumers.engine import Engine
from trainsentry.consumers.progress import CommandProgress
from trainsentry.consumers.settings import KafkaSettings
from trainsentry.consumers.sidecar import Sidecar, SidecarOptions
from trainsentry.consumers.tail import follow_alerts
from trainsentry.producers.publisher import TensorPublisher
from trainsentry.producers.save_config import SaveConfig
from trainsentry.producers.settings import SenderSettings
from trainsentry.protocol import AlertEvent, Topics
from trainsentry.protocol.kafka_properties import KafkaProperties
from trainsentry.rules.config import Config, RuleConfig
from trainsentry.rules.metrics import MetricDefinition

if TYPE_CHECKING:
    from trainsentry.consumers.ui import DashboardOptions

TRIAL = "demo-run"
PLATEAU_AT = 120  # the loss stops falling here: LossNotDecreasing should say so within seconds
QUIET_SECONDS = 2.0  # after training, how long without a new alert before the demo ends

DEMO_CONFIG = Config(
    rules=(RuleConfig.of("LossNotDecreasing", num_steps=20),
           RuleConfig.of("WeightUpdateRatio")),
    metrics=(MetricDefinition("train_loss", r"loss=([-+0-9.eE]+|nan|inf)"),),
)


def synthetic_training(servers: str, topics: Topics, steps: int, step_seconds: float,
                       progress: CommandProgress | None = None,
                       properties: KafkaProperties | None = None) -> None:
    """A training loop whose loss plateaus at :data:`PLATEAU_AT` and whose weights then freeze;
    ``progress`` is told the steps done and the events published."""
    rng = np.random.default_rng(0)
    weight = rng.normal(scale=0.1, size=(32, 32)).astype(np.float32)
    publisher = TensorPublisher(TRIAL, save_config=SaveConfig(save_interval=1), settings=SenderSettings(
        bootstrap_servers=servers, topic_prefix=topics.prefix,
        kafka_properties=None if properties is None else dict(properties.values)))
    try:
        for step in range(steps):
            if step < PLATEAU_AT:
                loss = 2.0 * math.exp(-step / 40) + 0.3 + rng.normal(scale=0.01)
                weight += rng.normal(scale=1e-3, size=weight.shape).astype(np.float32)
            else:
                loss = 0.45 + rng.normal(scale=0.01)  # stuck; and the optimizer stopped moving
            publisher.scalar("loss", loss, step=step, collections=["losses"])
            if step % 10 == 0:
                publisher.tensor("fc1.weight", weight, step=step, collections=["weights"])
                publisher.log_line(f"step {step} loss={loss:.4f}")
                print(f"  training  step {step:4d}  loss {loss:.4f}", flush=True)
            if progress is not None:
                progress.add(events=3 if step % 10 == 0 else 1)
                progress.set_position(step + 1, steps)
            time.sleep(step_seconds)
    finally:
        publisher.close(timeout=10)


async def run_demo(bootstrap_servers: str | None = None, steps: int = 300,
                   step_seconds: float = 0.01, ui: DashboardOptions | None = None,
                   properties: KafkaProperties | None = None) -> int:
    """Run the demo; 0 when at least one alert arrived live, 1 otherwise.

    ``properties`` say how every client reaches ``bootstrap_servers`` (TLS, SASL); the embedded
    broker, started when no cluster is given, speaks plaintext.

    With ``ui``, the dashboard is served beside it from the start, and stays up after training
    until SIGINT or SIGTERM.
    """
    broker = None
    if bootstrap_servers is None:
        print("starting the embedded Kafka-protocol broker (Tansu) ...", flush=True)
        broker = await asyncio.to_thread(EmbeddedBroker().start)
        bootstrap_servers = broker.bootstrap_servers
    topics = Topics(f"trainsentry-demo-{uuid.uuid4().hex[:8]}")
    settings = KafkaSettings(bootstrap_servers=bootstrap_servers, topics=topics,
                             group_id=f"{topics.prefix}-sidecar",
                             session_timeout_ms=2000, heartbeat_interval_ms=500,
                             connection=properties.client_kwargs() if properties else {})
    logging.getLogger("trainsentry").setLevel(logging.WARNING)  # the demo prints its own lines
    alerts: list[AlertEvent] = []

    def show(alert: AlertEvent) -> None:
        alerts.append(alert)
        delay_ms = (time.time() - alert.event_ts) * 1000
        print(f"  {alert_line(alert)}  (+{delay_ms:.0f} ms after the step was written)", flush=True)

    stop, ui_stop = asyncio.Event(), asyncio.Event()
    dashboard: asyncio.Task | None = None
    try:
        print(f"broker at {bootstrap_servers}; sidecar rules: LossNotDecreasing(num_steps=20), "
              f"WeightUpdateRatio; topics {topics.prefix}.*", flush=True)
        if ui is not None:  # first: a port that is taken ends the demo before anything runs
            dashboard = await _start_dashboard(settings, ui, ui_stop)
        sidecar = asyncio.create_task(Sidecar(Engine(DEMO_CONFIG), settings, SidecarOptions()).run(stop))
        follower = asyncio.create_task(follow_alerts(settings, show, stop=stop))
        print(f"training {steps} steps; the loss stops falling at step {PLATEAU_AT} ...", flush=True)
        with CommandProgress("demo", unit="steps", alerts=lambda: len(alerts)) as progress:
            await asyncio.to_thread(synthetic_training, bootstrap_servers, topics, steps, step_seconds,
                                    progress, properties)
        # Let the last alerts of the run arrive: until none has come for a while (or a deadline).
        deadline, seen, quiet_since = time.monotonic() + 20, -1, time.monotonic()
        while time.monotonic() < deadline and not sidecar.done():
            if len(alerts) != seen:
                seen, quiet_since = len(alerts), time.monotonic()
            elif alerts and time.monotonic() - quiet_since > QUIET_SECONDS:
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(sidecar, follower)
        if dashboard is not None:
            print("training done; the dashboard stays up until Ctrl-C", flush=True)
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, ui_stop.set)
            await dashboard
    finally:
        stop.set()
        ui_stop.set()
        if dashboard is not None:
            await asyncio.gather(dashboard, return_exceptions=True)
        if broker is None:
            await delete_topics(settings, topics.all())
        else:
            await asyncio.to_thread(broker.stop)
    kinds = sorted({a.rule_type for a in alerts})
    if not alerts:
        print("no alert arrived: something is wrong (see the messages above)", flush=True)
        return 1
    print(f"done: {len(alerts)} alerts ({', '.join(kinds)}) came through the live broker; "
          f"broker stopped.", flush=True)
    return 0


async def _start_dashboard(settings: KafkaSettings, options: DashboardOptions,
                           stop: asyncio.Event) -> asyncio.Task:
    """The dashboard serving beside the demo (its URL printed), or its error raised."""
    from trainsentry.consumers.ui import run_dashboard

    ready = asyncio.Event()
    task = asyncio.create_task(run_dashboard(settings, options, stop, on_ready=lambda url: (
        print(f"dashboard at {url}", flush=True), ready.set())))
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if task.done():
        task.result()  # raises what stopped it (the port is taken, say)
    return task
