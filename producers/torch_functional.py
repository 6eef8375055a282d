"""Inputs of functional activations: ``F.relu(x)``, ``torch.tanh(x)``, ``x.sigmoid()``.

Most PyTorch models call activations as functions inside ``forward`` rather than as ``nn.ReLU``
modules, so module hooks alone would miss them. During the forward pass of a saved step only, a
``TorchFunctionMode`` sees each such call and the hook publishes its input, named after the module
whose ``forward`` made the call: ``block1.relu_input`` (``block1.relu_input_1`` for its second call
in the same step, and so on). Calls made by ``nn.ReLU``, ``nn.Tanh`` and ``nn.Sigmoid`` modules are
left to those modules' own hooks. Unsaved steps run without any of this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.hooks import RemovableHandle


def _activation_functions() -> dict[Callable[..., Any], str]:
    table: dict[Callable[..., Any], str] = {}
    kinds = {
        "relu_input": (torch.relu, torch.relu_, F.relu, F.relu_, torch.Tensor.relu, torch.Tensor.relu_),
        "tanh_input": (torch.tanh, torch.tanh_, F.tanh, torch.Tensor.tanh, torch.Tensor.tanh_),
        "sigmoid_input": (torch.sigmoid, torch.sigmoid_, F.sigmoid, torch.Tensor.sigmoid,
                          torch.Tensor.sigmoid_),
    }
    for collection, functions in kinds.items():
        for function in functions:
            table[function] = collection
    return table


ACTIVATION_FUNCTIONS = _activation_functions()


class FunctionalActivations(TorchFunctionMode):
    """Reports the input of every functional activation called inside the hooked model's forward.

    ``names`` maps ``id(module)`` to its qualified name in the model; calls made while a module of
    ``module_types`` runs are skipped (those modules are hooked themselves). ``publish(name,
    collection, tensor)`` is called for the others.
    """

    def __init__(self, names: Mapping[int, str], module_types: tuple[type[nn.Module], ...],
                 publish: Callable[[str, str, torch.Tensor], None]) -> None:
        super().__init__()
        self._names = names
        self._module_types = module_types
        self._publish = publish
        self._stack: list[nn.Module] = []
        self._calls: dict[str, int] = {}
        self.captured = 0
        self._handles: list[RemovableHandle] = []

    def start(self, model: nn.Module) -> None:
        """Begin watching, from within ``model``'s forward pre-hook: module hooks keep the call
        stack (``model`` is already running, so it starts on it), then the mode itself."""
        register_pre = nn.modules.module.register_module_forward_pre_hook
        register_post = nn.modules.module.register_module_forward_hook
        self._handles = [register_pre(self._entered), register_post(self._left, always_call=True)]
        self._stack = [model]
        self.__enter__()

    def stop(self) -> None:
        self.__exit__(None, None, None)
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _entered(self, module: nn.Module, args: Any) -> None:
        self._stack.append(module)

    def _left(self, module: nn.Module, args: Any, output: Any) -> None:
        if self._stack and self._stack[-1] is module:
            self._stack.pop()

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        collection = ACTIVATION_FUNCTIONS.get(func)
        if collection is not None and args and isinstance(args[0], torch.Tensor):
            self._capture(collection, args[0])
        return func(*args, **(kwargs or {}))

    def _capture(self, collection: str, tensor: torch.Tensor) -> None:
        owner = next((m for m in reversed(self._stack) if id(m) in self._names), None)
        if owner is None or isinstance(owner, self._module_types):
            return
        base = f"{self._names[id(owner)] or 'model'}.{collection}"
        count = self._calls.get(base, 0)
        self._calls[base] = count + 1
        self.captured += 1
        self._publish(base if count == 0 else f"{base}_{count}", collection, tensor)
