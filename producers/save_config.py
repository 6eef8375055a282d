"""Which steps to save, per mode and per collection, as SageMaker Debugger's ``SaveConfig``.

A step is saved when it is one of ``save_steps``, or when it lies in ``[start_step, end_step)``
and is a multiple of ``save_interval`` (the step itself, not its distance from ``start_step``:
that is SageMaker's rule). Steps are counted per mode.

>>> config = SaveConfig(save_interval=10, save_steps=(3,))
>>> [s for s in range(25) if config.should_save(s)]
[0, 3, 10, 20]
>>> SaveConfig(save_interval=5, modes={"EVAL": SaveConfig(save_interval=1)}).should_save(2, "EVAL")
True
>>> plan = SavePlan(SaveConfig(save_interval=100), {"losses": SaveConfig(save_interval=1)})
>>> plan.should_save(7, "TRAIN", ("losses",)), plan.should_save(7, "TRAIN", ("weights",))
(True, False)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from trainsentry.protocol import MODES

DEFAULT_SAVE_INTERVAL = 100


@dataclass(frozen=True)
class SaveConfig:
    """When to save: every ``save_interval`` steps within ``[start_step, end_step)``, plus ``save_steps``.

    ``modes`` overrides the whole configuration for some modes (SageMaker's ``SaveConfigMode``).
    """

    save_interval: int = DEFAULT_SAVE_INTERVAL
    start_step: int = 0
    end_step: int | None = None
    save_steps: frozenset[int] = frozenset()
    modes: Mapping[str, SaveConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.save_interval < 1:
            raise ValueError(f"save_interval must be >= 1, got {self.save_interval}")
        if self.start_step < 0 or (self.end_step is not None and self.end_step < self.start_step):
            raise ValueError(f"invalid step range [{self.start_step}, {self.end_step})")
        object.__setattr__(self, "save_steps", frozenset(self.save_steps))
        unknown = set(self.modes) - MODES
        if unknown:
            raise ValueError(f"unknown modes {sorted(unknown)}; expected some of {sorted(MODES)}")

    def should_save(self, step: int, mode: str = "TRAIN") -> bool:
        """Whether ``step`` (counted within ``mode``) is saved."""
        config = self.modes.get(mode, self)
        if step in config.save_steps:
            return True
        if step < config.start_step or (config.end_step is not None and step >= config.end_step):
            return False
        return step % config.save_interval == 0


@dataclass(frozen=True)
class SavePlan:
    """A default :class:`SaveConfig` and the collections that have their own.

    A tensor is saved at a step when any of its collections saves that step (SageMaker's rule for
    a tensor in several collections). A collection without its own configuration, and a tensor in
    no collection, follow the default.
    """

    default: SaveConfig = field(default_factory=SaveConfig)
    collections: Mapping[str, SaveConfig] = field(default_factory=dict)

    def config_for(self, collection: str) -> SaveConfig:
        return self.collections.get(collection, self.default)

    def should_save(self, step: int, mode: str = "TRAIN", collections: Iterable[str] = ()) -> bool:
        configs = [self.config_for(c) for c in collections] or [self.default]
        return any(config.should_save(step, mode) for config in configs)
