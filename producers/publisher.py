"""Publish scalars, arrays and log lines of one training process, framework-free::

    pub = TensorPublisher("run-1", save_config=SaveConfig(save_interval=10))
    for step in range(steps):
        ...
        pub.scalar("loss", loss, step=step, collections=["losses"])
        pub.tensor("fc1.weight", w1, step=step, collections=["weights"])
    pub.close()

Every call returns at once: the event is copied into a bounded buffer and encoded and sent by a
background thread (:mod:`.sender`). ``True`` means queued, ``False`` not saved at this step or
dropped. The arguments are checked on the caller's thread, so a typo fails at the first call.

Every ``tensor`` and ``scalar`` event carries the writer's session: one id per process
(:func:`process_session`, new in a forked child), so that a run restarted from a checkpoint,
which writes its steps again, is told from a repeat (docs/rules.md, "Resumed runs"). ``log``
events carry the publisher's own session, since their ``seq`` counts per publisher.

For ClassImbalance, :meth:`TensorPublisher.labels` and :meth:`TensorPublisher.predictions`
publish a step's true classes and predicted classes (tensors ``labels`` and ``predictions``)::

    pub.labels(y, step=step)
    pub.predictions(scores, step=step)    # scores with classes on the last axis: sent as argmax
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from trainsentry.protocol import DTYPES, MODES, STREAMS, LogEvent, ScalarEvent, TensorEvent, Topics, encode

from .delivery_ledger import SenderStats
from .reductions import reduce_array
from .save_config import SaveConfig, SavePlan
from .sender import BackgroundSender
from .settings import SenderSettings, default_worker

# What one event costs the buffer besides its array bytes: a generous estimate of its msgpack size.
EVENT_OVERHEAD_BYTES = 192
LABELS, PREDICTIONS = "labels", "predictions"  # ClassImbalance's tensors (and their collections)


def _new_session() -> str:
    return uuid.uuid4().hex[:16]


_process_session = _new_session()


def process_session() -> str:
    """This process's writer session: the ``session`` of its tensor and scalar events."""
    return _process_session


def _renew_session() -> None:
    global _process_session
    _process_session = _new_session()


os.register_at_fork(after_in_child=_renew_session)  # a forked writer is another writer


class ArraySnapshot(Protocol):
    """A copy of a tensor taken on the training thread, turned into an array on the sender thread.

    The PyTorch hook uses it for device tensors: the copy is started without waiting, and only the
    sender thread waits for it to finish.
    """

    nbytes: int

    def resolve(self) -> np.ndarray: ...


class TensorPublisher:
    """The training side of trainsentry for one (trial, worker).

    ``save_config`` decides which steps are saved, ``collection_configs`` overrides it per
    collection (SageMaker Debugger's ``SaveConfig`` semantics, see :mod:`.save_config`). Arrays
    larger than ``reductions_above_bytes`` are sent as writer-side reductions instead of their
    bytes. ``bootstrap_servers`` and ``topic_prefix`` override those of ``settings``. ``sender``
    shares another publisher's connection (its settings then apply); closing either closes it.

    How to reach a secured cluster (TLS, SASL) comes from ``settings.kafka_config``,
    ``$TRAINSENTRY_KAFKA_CONFIG`` and ``KAFKA_*`` variables (:mod:`.kafka_client_options`).
    Training never stops because of Kafka, with one exception made on purpose: a security
    configuration that cannot be used (unknown property, missing file, certificate that does not
    load, SASL without a username) raises
    :class:`~trainsentry.protocol.kafka_properties.KafkaConfigError` from this constructor, one
    line naming the property, before the first step. It is the user's mistake and would never
    heal, so it is said loudly at start instead of leaving the run unobserved. A broker that is
    unreachable, or that refuses the TLS handshake or the credentials, is only logged: training
    goes on and events wait in the buffer.
    """

    def __init__(self, trial: str, *, worker: str | None = None,
                 save_config: SaveConfig | None = None,
                 collection_configs: Mapping[str, SaveConfig] | None = None,
                 reductions_above_bytes: int | None = None,
                 bootstrap_servers: str | None = None, topic_prefix: str | None = None,
                 settings: SenderSettings | None = None,
                 sender: BackgroundSender | None = None) -> None:
        if not trial or len(trial) > 256:
            raise ValueError(f"trial must be 1..256 characters, got {trial!r}")
        settings = sender.settings if sender is not None else settings or SenderSettings()
        overrides = {k: v for k, v in (("bootstrap_servers", bootstrap_servers),
                                       ("topic_prefix", topic_prefix)) if v is not None}
        if overrides and sender is None:
            settings = dataclasses.replace(settings, **overrides)
        self.trial = trial
        self.settings = settings
        self.worker = worker or default_worker()
        self.topics = Topics(settings.resolved_topic_prefix())
        self.save_plan = SavePlan(save_config or SaveConfig(), dict(collection_configs or {}))
        self.reductions_above_bytes = reductions_above_bytes
        self._key = trial.encode("utf-8")
        self._max_data_bytes = settings.max_record_bytes
        self._log_seq = {stream: itertools.count() for stream in STREAMS}
        # seq restarts with every process: the session tells a restarted writer from a repeat.
        self._session = uuid.uuid4().hex[:16]
        self._sender = sender or BackgroundSender(settings)

    # --- what to save --------------------------------------------------------------------------

    def should_save(self, step: int, mode: str = "TRAIN", collections: Sequence[str] = ()) -> bool:
        """Whether a tensor in ``collections`` is saved at ``step`` of ``mode``."""
        return self.save_plan.should_save(step, mode, collections)

    # --- publishing ----------------------------------------------------------------------------

    def scalar(self, name: str, value: float | ArraySnapshot, *, step: int, mode: str = "TRAIN",
               global_step: int | None = None, collections: Sequence[str] = ()) -> bool:
        """Publish a 0-d value (a loss, a metric) if ``step`` is saved for its collections."""
        collections = tuple(collections)
        step, global_step = _check_steps(mode, step, global_step)
        if not self.save_plan.should_save(step, mode, collections):
            return False
        return self.send_scalar(name, value, step=step, mode=mode, global_step=global_step,
                                collections=collections)

    def tensor(self, name: str, array: np.ndarray | ArraySnapshot, *, step: int, mode: str = "TRAIN",
               global_step: int | None = None, collections: Sequence[str] = (),
               copy: bool = True) -> bool:
        """Publish an array if ``step`` is saved for its collections.

        The array is copied (training goes on mutating it in place); pass ``copy=False`` only for an
        array nobody will write to again.
        """
        collections = tuple(collections)
        step, global_step = _check_steps(mode, step, global_step)
        if not self.save_plan.should_save(step, mode, collections):
            return False
        if not hasattr(array, "resolve"):
            array = np.array(array, copy=True) if copy else np.asarray(array)
            if array.dtype.name not in DTYPES:
                raise TypeError(f"tensor {name!r}: dtype {array.dtype.name} is not one of "
                                f"{', '.join(DTYPES)}")
        return self.send_tensor(name, array, step=step, mode=mode, global_step=global_step,
                                collections=collections)

    def labels(self, labels: np.ndarray, *, step: int, mode: str = "TRAIN",
               global_step: int | None = None, name: str = LABELS) -> bool:
        """Publish a step's true class ids (ClassImbalance pairs them with :meth:`predictions`)."""
        return self.tensor(name, labels, step=step, mode=mode, global_step=global_step,
                           collections=(LABELS,))

    def predictions(self, predictions: np.ndarray, *, step: int, mode: str = "TRAIN",
                    global_step: int | None = None, name: str = PREDICTIONS,
                    argmax: bool | None = None) -> bool:
        """Publish a step's predicted classes.

        Scores with classes on the last axis (a floating array of two or more dimensions) are sent
        as their argmax, the class ids ClassImbalance reads with its defaults; ``argmax=False``
        sends them as they are (then set the rule's ``argmax = true``), ``argmax=True`` always
        reduces the last axis.
        """
        array = np.asarray(predictions)
        if sends_argmax(argmax, array.ndim, array.dtype.kind == "f"):
            if not self.save_plan.should_save(int(step), mode, (PREDICTIONS,)):
                return False
            array = array.argmax(axis=-1)
        return self.tensor(name, array, step=step, mode=mode, global_step=global_step,
                           collections=(PREDICTIONS,))

    # The two below skip the save schedule and the argument checks: they are for callers that
    # already asked should_save() and hold valid arguments (the PyTorch hook, at its saved steps).

    def send_scalar(self, name: str, value: float | ArraySnapshot, *, step: int, mode: str,
                    global_step: int | None, collections: tuple[str, ...]) -> bool:
        """Queue a scalar event as given, saved step or not."""
        if not hasattr(value, "resolve"):
            value = float(value)
        fields = (self.trial, time.time(), mode, step, name, value, self.worker, global_step,
                  collections, _process_session)
        return self._sender.submit(self.topics.tensors, self._key, fields, _encode_scalar,
                                   EVENT_OVERHEAD_BYTES + len(name))

    def send_tensor(self, name: str, array: np.ndarray | ArraySnapshot, *, step: int, mode: str,
                    global_step: int | None, collections: tuple[str, ...]) -> bool:
        """Queue a tensor event as given: ``array`` must be a private copy or a snapshot."""
        nbytes = array.nbytes
        reduce = (self.reductions_above_bytes is not None and nbytes > self.reductions_above_bytes
                  ) or nbytes > self._max_data_bytes
        draft = (self.trial, time.time(), mode, step, name, self.worker, global_step, collections,
                 array, reduce, _process_session)
        # The copy is held until the sender thread has encoded it: it counts in full.
        return self._sender.submit(self.topics.tensors, self._key, draft, _encode_tensor,
                                   EVENT_OVERHEAD_BYTES + len(name) + nbytes)

    def log_line(self, line: str, *, stream: str = "stdout") -> bool:
        """Publish one line of output (without its line ending); ``seq`` counts per stream from 0."""
        if stream not in STREAMS:
            raise ValueError(f"stream must be one of {sorted(STREAMS)}, got {stream!r}")
        return self._submit_line(line, stream, final=None)

    def end_of_worker(self, note: str = "end of worker") -> bool:
        """Tell the sidecar this (trial, worker) writes nothing more (a ``log`` event, ``final``).

        Once every worker of a trial has said so, the sidecar releases the trial's state. Send it
        from the outermost writer of a worker: ``trainsentry tap`` does when its command exits.
        """
        return self._submit_line(f"[trainsentry] {note}", "stderr", final=True)

    def _submit_line(self, line: str, stream: str, final: bool | None) -> bool:
        event = LogEvent(self.trial, time.time(), stream, line, next(self._log_seq[stream]),
                         self.worker, final=final, session=self._session)
        return self._sender.submit(self.topics.logs, self._key, event, encode,
                                   EVENT_OVERHEAD_BYTES + len(line))

    # --- lifecycle -----------------------------------------------------------------------------

    def stats(self) -> SenderStats:
        return self._sender.stats()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything published so far is acknowledged; ``False`` if it was not in time."""
        return self._sender.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Deliver what is buffered within ``timeout`` seconds, then stop. Safe to call twice."""
        self._sender.close(timeout)

    def __enter__(self) -> TensorPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_steps(mode: str, step: int, global_step: int | None) -> tuple[int, int | None]:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
    step = int(step)  # numpy integers are not msgpack integers
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if global_step is not None:
        global_step = int(global_step)
        if global_step < 0:
            raise ValueError(f"global_step must be >= 0, got {global_step}")
        if mode == "GLOBAL" and global_step != step:
            raise ValueError(f"in mode GLOBAL, global_step ({global_step}) must equal step ({step})")
    return step, global_step


# --- encoders: they run on the sender thread -------------------------------------------------

def sends_argmax(argmax: bool | None, ndim: int, floating: bool) -> bool:
    """Whether predictions are reduced to their argmax (see :meth:`TensorPublisher.predictions`)."""
    return argmax if argmax is not None else (ndim >= 2 and floating)


def _encode_scalar(fields: tuple[Any, ...]) -> bytes:
    trial, ts, mode, step, name, value, worker, global_step, collections, session = fields
    if hasattr(value, "resolve"):
        value = float(value.resolve().reshape(-1)[0])
    return encode(ScalarEvent(trial, ts, mode, step, name, value, worker, global_step, collections,
                              session))


def _encode_tensor(draft: tuple[Any, ...]) -> bytes:
    trial, ts, mode, step, name, worker, global_step, collections, source, reduce, session = draft
    array = source if isinstance(source, np.ndarray) else source.resolve()
    fields = dict(trial=trial, ts=ts, mode=mode, step=step, name=name, worker=worker,
                  global_step=global_step, collections=collections, session=session)
    if reduce:
        return encode(TensorEvent(reductions=reduce_array(array), **fields))
    return encode(TensorEvent.from_array(array, **fields))
