"""Publish what the rules need from a PyTorch model: add trainsentry to a script in three lines::

    from trainsentry.producers.torch_hook import TrainsentryHook
    hook = TrainsentryHook(trial="digits-1", save_interval=10)
    hook.register(model, loss=criterion)   # or call hook.record_loss(loss) after computing it

A step is one forward pass of the registered model, counted per mode (``TRAIN`` after
``model.train()``, ``EVAL`` after ``model.eval()``) and globally, as SageMaker Debugger counts.
At a saved step the hook publishes:

- the parameters as they enter the step (collections ``weights`` and ``biases``, e.g. ``fc1.weight``),
- their gradients once backward has accumulated them (``gradients``, ``fc1.weight.grad``),
- the loss (``losses``, a scalar event), in TRAIN and EVAL mode alike: after ``model.eval()`` a
  forward pass is an EVAL step, so validation losses come beside training ones (for Overfit),
- the step's labels and predictions when the loop passes them (:meth:`~TrainsentryHook.record_labels`,
  :meth:`~TrainsentryHook.record_predictions`: tensors ``labels``, ``predictions``; ClassImbalance),
- the inputs of ``nn.ReLU``, ``nn.Tanh`` and ``nn.Sigmoid`` modules (``relu_input``, ``tanh_input``
  and ``sigmoid_input``, e.g. ``act1.relu_input``), and of the same activations called as
  functions in a ``forward`` (``F.relu(x)``, ``torch.tanh(x)``, ``x.sigmoid()``: see
  :mod:`.torch_functional`), named after the calling module (``block1.relu_input``).

At a step that is not saved the hook costs one Python call and no tensor work: the hooks on
layers, parameters and the loss module are installed only for saved steps. A saved tensor costs one copy (``.to("cpu",
non_blocking=True)`` on a GPU); turning it into bytes happens on the sender thread.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from trainsentry.protocol.settings import ENV_TRIAL

from .delivery_ledger import SenderStats
from .publisher import LABELS, PREDICTIONS, TensorPublisher, sends_argmax
from .save_config import SaveConfig
from .settings import SenderSettings
from .torch_functional import FunctionalActivations

log = logging.getLogger("trainsentry.producers")

WEIGHTS, BIASES, GRADIENTS, LOSSES = "weights", "biases", "gradients", "losses"
ACTIVATIONS: Mapping[type[nn.Module], str] = {
    nn.ReLU: "relu_input",
    nn.Tanh: "tanh_input",
    nn.Sigmoid: "sigmoid_input",
}

_COLLECTIONS = (WEIGHTS, BIASES, GRADIENTS, LOSSES, LABELS, PREDICTIONS, *ACTIVATIONS.values())
_ONE = {name: (name,) for name in _COLLECTIONS}

# dtypes numpy (and the protocol) cannot carry are widened on the sender thread.
_WIDEN = {torch.bfloat16: torch.float32}


class TensorSnapshot:
    """A copy of a tensor made on the training thread, read as numpy on the sender thread."""

    __slots__ = ("tensor", "ready", "nbytes")

    def __init__(self, tensor: torch.Tensor) -> None:
        self.ready: torch.cuda.Event | None = None
        if tensor.is_cuda:
            # Do not wait for the device here; the sender thread waits on the event instead.
            self.tensor = tensor.detach().to("cpu", non_blocking=True)
            self.ready = torch.cuda.Event()
            self.ready.record(torch.cuda.current_stream(tensor.device))
        elif tensor.is_cpu:
            self.tensor = tensor.detach().clone()  # training updates parameters and grads in place
        else:
            self.tensor = tensor.detach().to("cpu")
        self.nbytes = self.tensor.nbytes

    def resolve(self) -> np.ndarray:
        if self.ready is not None:
            self.ready.synchronize()
        tensor = self.tensor
        if tensor.dtype in _WIDEN:
            tensor = tensor.to(_WIDEN[tensor.dtype])
        return tensor.numpy()


class TrainsentryHook:
    """Hooks a model so that its saved steps are published to trainsentry.

    ``trial`` defaults to ``$TRAINSENTRY_TRIAL`` (which ``trainsentry tap`` sets), else a new id
    that is logged. ``save_interval`` is shorthand for ``save_config=SaveConfig(save_interval=...)``;
    ``collection_configs`` overrides it per collection, e.g. ``{"losses": SaveConfig(save_interval=1)}``.
    ``functional_activations=False`` leaves activations called as functions alone (only modules
    are then seen); they are also left alone after a saved step whose forward called none. Everything else goes to :class:`~.publisher.TensorPublisher`,
    including how to reach a secured cluster (``settings.kafka_config``, ``$TRAINSENTRY_KAFKA_CONFIG``)
    and the one Kafka error raised here: a security configuration that cannot be used.
    """

    def __init__(self, trial: str | None = None, *, save_interval: int | None = None,
                 save_config: SaveConfig | None = None,
                 collection_configs: Mapping[str, SaveConfig] | None = None,
                 worker: str | None = None, reductions_above_bytes: int | None = None,
                 functional_activations: bool = True,
                 bootstrap_servers: str | None = None, topic_prefix: str | None = None,
                 settings: SenderSettings | None = None,
                 publisher: TensorPublisher | None = None) -> None:
        if save_config is not None and save_interval is not None:
            raise ValueError("give save_interval or save_config, not both")
        if save_interval is not None:
            save_config = SaveConfig(save_interval=save_interval)
        self.publisher = publisher or TensorPublisher(
            trial or _default_trial(), worker=worker, save_config=save_config,
            collection_configs=collection_configs, reductions_above_bytes=reductions_above_bytes,
            bootstrap_servers=bootstrap_servers, topic_prefix=topic_prefix, settings=settings)
        self.mode: str | None = None
        self.step = -1
        self.global_step = -1
        self._next_step = {"TRAIN": 0, "EVAL": 0}
        self._saving: frozenset[str] = frozenset()  # the collections saved at the current step
        # Collections grouped by their SaveConfig: one should_save() per distinct config and step.
        plan = self.publisher.save_plan
        by_config: dict[int, tuple[SaveConfig, list[str]]] = {}
        for name in _COLLECTIONS:
            config = plan.config_for(name)
            by_config.setdefault(id(config), (config, []))[1].append(name)
        self._schedule = [(config, frozenset(names)) for config, names in by_config.values()]
        self._parameters: list[tuple[str, nn.Parameter, str]] = []
        self._activations: list[tuple[str, nn.Module, str]] = []
        self._loss_module: nn.Module | None = None
        self._functional = functional_activations
        self._module_names: dict[int, str] = {}
        self._tracer: FunctionalActivations | None = None
        self._unpublishable: set[str] = set()
        self._permanent: list[RemovableHandle] = []
        self._per_step: list[RemovableHandle] = []

    @property
    def trial(self) -> str:
        return self.publisher.trial

    # --- wiring --------------------------------------------------------------------------------

    def register(self, model: nn.Module, loss: nn.Module | None = None) -> TrainsentryHook:
        """Hook ``model`` (its forward passes are the steps) and optionally the ``loss`` module."""
        if self._permanent:
            raise RuntimeError("this hook is already registered to a model; use one hook per model")
        self._parameters, self._activations = [], []
        self._module_names = {id(module): name for name, module in model.named_modules()}
        for name, param in model.named_parameters():
            collection = BIASES if name.endswith("bias") else WEIGHTS
            self._parameters.append((name, param, collection))
        for name, module in model.named_modules():
            collection = ACTIVATIONS.get(type(module))
            if collection is not None:
                self._activations.append((f"{name or 'model'}.{collection}", module, collection))
        self._permanent.append(model.register_forward_pre_hook(_StepStart(self)))
        self._loss_module = loss
        return self

    def remove(self) -> None:
        """Detach every hook from the model (publishing stops; :meth:`close` still flushes).

        :meth:`register` may be called again afterwards; steps go on counting from where they were.
        """
        if self._tracer is not None:
            self._stop_tracing(None, (), None)
        for handle in self._permanent + self._per_step:
            handle.remove()
        self._permanent.clear()
        self._per_step.clear()
        self._loss_module = None

    # --- what training calls ----------------------------------------------------------------

    def record_loss(self, loss: torch.Tensor | float, name: str = "loss") -> bool:
        """Publish the loss of the current step if losses are saved at it; cheap otherwise."""
        if LOSSES not in self._saving:
            return False
        try:
            value = TensorSnapshot(loss) if isinstance(loss, torch.Tensor) else float(loss)
            return self.publisher.send_scalar(name, value, step=self.step, mode=self.mode,
                                              global_step=self.global_step, collections=(LOSSES,))
        except Exception:
            self._cannot_capture(name)
            return False

    def record_labels(self, labels: torch.Tensor, name: str = LABELS) -> bool:
        """Publish the current step's true class ids if labels are saved at it (ClassImbalance);
        call it after the step's forward pass, as :meth:`record_predictions`."""
        if LABELS not in self._saving:
            return False
        return self._publish(name, torch.as_tensor(labels), LABELS)

    def record_predictions(self, predictions: torch.Tensor, name: str = PREDICTIONS,
                           argmax: bool | None = None) -> bool:
        """Publish the current step's predictions if they are saved at it (ClassImbalance).

        Scores with classes on the last axis (logits: a floating tensor of two or more dimensions)
        are sent as their argmax, the class ids the rule reads with its defaults; ``argmax=False``
        sends them as they are (then set the rule's ``argmax = true``).
        """
        if PREDICTIONS not in self._saving:
            return False
        tensor = torch.as_tensor(predictions).detach()
        if sends_argmax(argmax, tensor.ndim, tensor.is_floating_point()):
            tensor = tensor.argmax(dim=-1)
        return self._publish(name, tensor, PREDICTIONS)

    def stats(self) -> SenderStats:
        return self.publisher.stats()

    def close(self, timeout: float | None = None) -> None:
        """Remove the hooks and deliver what is buffered within ``timeout`` seconds."""
        self.remove()
        self.publisher.close(timeout)

    def __enter__(self) -> TrainsentryHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- torch hooks -------------------------------------------------------------------------

    def _on_step_start(self, model: nn.Module, args: Any) -> None:
        if self._tracer is not None:  # the last forward ended without its hook (defensive)
            self._stop_tracing(model, args, None)
        if self._per_step:
            for handle in self._per_step:
                handle.remove()
            self._per_step.clear()
        mode = "TRAIN" if model.training else "EVAL"
        step = self._next_step[mode]
        self._next_step[mode] = step + 1
        self.mode, self.step = mode, step
        self.global_step += 1
        saving: frozenset[str] = frozenset()
        for config, names in self._schedule:
            if config.should_save(step, mode):
                saving |= names
        self._saving = saving
        if not saving:
            return
        try:
            self._arm(model, saving)
        except Exception:  # a hook must never break the training step
            self._cannot_capture(f"the saved steps of {type(model).__name__}")

    def _arm(self, model: nn.Module, saving: frozenset[str]) -> None:
        if LOSSES in saving and self._loss_module is not None:
            self._per_step.append(self._loss_module.register_forward_hook(_LossOutput(self)))
        save_gradients = GRADIENTS in saving
        for name, param, collection in self._parameters:
            if collection in saving:
                self._publish(name, param, collection)
            if save_gradients and param.requires_grad:
                self._per_step.append(param.register_post_accumulate_grad_hook(
                    _GradientCapture(self, f"{name}.grad")))
        for name, module, collection in self._activations:
            if collection in saving:
                self._per_step.append(module.register_forward_pre_hook(
                    _InputCapture(self, name, collection)))
        if self._functional and not saving.isdisjoint(ACTIVATIONS.values()):
            self._start_tracing(model, saving)

    def _start_tracing(self, model: nn.Module, saving: frozenset[str]) -> None:
        def publish(name: str, collection: str, tensor: torch.Tensor) -> None:
            if collection in saving:
                self._publish(name, tensor, collection)

        self._tracer = FunctionalActivations(self._module_names, tuple(ACTIVATIONS), publish)
        # always_call: the mode is left even when forward raises
        self._per_step.append(model.register_forward_hook(_ForwardEnd(self), always_call=True))
        self._tracer.start(model)

    def _stop_tracing(self, model: nn.Module, args: Any, output: Any) -> None:
        tracer, self._tracer = self._tracer, None
        if tracer is not None:
            tracer.stop()
            if not tracer.captured:
                # A forward that calls no activation function (all of them are modules) will not
                # start to: later saved steps are spared the cost of watching every torch call.
                self._functional = False

    def _on_loss_output(self, module: nn.Module, args: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor) and output.numel() == 1:
            self.record_loss(output)

    def _publish(self, name: str, tensor: torch.Tensor, collection: str) -> bool:
        try:
            return self.publisher.send_tensor(
                name, TensorSnapshot(tensor), step=self.step, mode=self.mode,
                global_step=self.global_step, collections=_ONE[collection])
        except Exception:  # runs inside forward and backward: an odd tensor must not break them
            self._cannot_capture(name)
            return False

    def _cannot_capture(self, name: str) -> None:
        if name not in self._unpublishable:
            self._unpublishable.add(name)
            log.exception("trainsentry: cannot capture %s; training goes on without it", name)


class _ModelHook:
    """Base of the callables the hook puts on a model, its modules and its parameters.

    A deep copy or an unpickled copy of the model (an EMA copy, ``torch.save(model)``) gets a
    do-nothing callable in their place: copying must not try to copy the sender and its thread,
    and the copy is not the model being observed.
    """

    __slots__ = ("hook",)

    def __init__(self, hook: TrainsentryHook) -> None:
        self.hook = hook

    def __deepcopy__(self, memo: dict) -> _Unobserved:
        return _Unobserved()

    def __reduce__(self) -> tuple:
        return (_Unobserved, ())


class _Unobserved:
    """What a copied model carries instead of a trainsentry hook."""

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        return None


class _StepStart(_ModelHook):
    """The model's forward pre-hook: every forward pass is a step."""

    __slots__ = ()

    def __call__(self, model: nn.Module, args: Any) -> None:
        self.hook._on_step_start(model, args)


class _ForwardEnd(_ModelHook):
    """The model's forward hook at a saved step: functional activations are no longer watched."""

    __slots__ = ()

    def __call__(self, model: nn.Module, args: Any, output: Any) -> None:
        self.hook._stop_tracing(model, args, output)


class _LossOutput(_ModelHook):
    """The loss module's forward hook at a saved step."""

    __slots__ = ()

    def __call__(self, module: nn.Module, args: Any, output: Any) -> None:
        self.hook._on_loss_output(module, args, output)


class _GradientCapture(_ModelHook):
    """Called once the gradient of one parameter is accumulated, at a saved step."""

    __slots__ = ("name",)

    def __init__(self, hook: TrainsentryHook, name: str) -> None:
        super().__init__(hook)
        self.name = name

    def __call__(self, param: torch.Tensor) -> None:
        if param.grad is not None:
            self.hook._publish(self.name, param.grad, GRADIENTS)


class _InputCapture(_ModelHook):
    """A forward pre-hook on an activation module, at a saved step: publishes the module's input."""

    __slots__ = ("name", "collection")

    def __init__(self, hook: TrainsentryHook, name: str, collection: str) -> None:
        super().__init__(hook)
        self.name, self.collection = name, collection

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if args and isinstance(args[0], torch.Tensor):
            self.hook._publish(self.name, args[0], self.collection)


def _default_trial() -> str:
    trial = os.environ.get(ENV_TRIAL)
    if trial:
        return trial
    script = os.path.splitext(os.path.basename(sys.argv[0] or "python"))[0] or "python"
    trial = f"{script}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    log.warning("trainsentry: no trial id given (argument or $%s); using %r", ENV_TRIAL, trial)
    return trial
