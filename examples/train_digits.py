"""Train a small MLP on scikit-learn's digits, healthy or with one planted bug, under trainsentry.

    python examples/train_digits.py --variant healthy
    python examples/train_digits.py --variant frozen --stop-on-alert

Each variant is a mistake people make, and trips exactly one of the four built-in rules of
``examples/rules.toml`` (``healthy`` trips none):

==================  ===========================================================  ====================
variant             the mistake                                                  rule
==================  ===========================================================  ====================
``healthy``         none                                                         none
``frozen``          the first layer's parameter group has ``lr=0``               WeightUpdateRatio
``tanh-saturated``  the tanh layer's bias drawn with std 50 instead of zeros      SaturatedActivation
``poor-init``       ReLU layers drawn from ``randn`` (std 1, no fan-in scaling)  PoorWeightInitialization
``stuck-loss``      labels shuffled apart from their images at every step        LossNotDecreasing
==================  ===========================================================  ====================

Training is full-batch Adam on 80% of the 1,797 digits (shipped with scikit-learn: no download), so
a healthy loss goes down at every step and the run takes a few seconds on a CPU. The hook saves
the loss at every step and the rest every 10 steps. Run the sidecar beside it
(``trainsentry run --config examples/rules.toml``) to see the alerts; ``--stop-on-alert`` ends
the run at the first one, as SageMaker Debugger's StopTraining action would.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from trainsentry.producers import AlertFollower, SaveConfig
from trainsentry.producers.torch_hook import TrainsentryHook

VARIANTS = ("healthy", "frozen", "tanh-saturated", "poor-init", "stuck-loss")
EXPECTED_RULE = {
    "healthy": None,
    "frozen": "WeightUpdateRatio",
    "tanh-saturated": "SaturatedActivation",
    "poor-init": "PoorWeightInitialization",
    "stuck-loss": "LossNotDecreasing",
}


class DigitsMLP(nn.Module):
    """64 pixels -> ReLU -> ReLU -> Tanh -> 10 classes: both kinds of activation the rules watch."""

    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.fc1, self.relu1 = nn.Linear(64, hidden), nn.ReLU()
        self.fc2, self.relu2 = nn.Linear(hidden, hidden), nn.ReLU()
        self.fc3, self.tanh = nn.Linear(hidden, hidden), nn.Tanh()
        self.out = nn.Linear(hidden, 10)
        for layer in (self.fc1, self.fc2):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
        nn.init.xavier_normal_(self.fc3.weight, gain=nn.init.calculate_gain("tanh"))
        nn.init.zeros_(self.fc3.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.fc1(x))
        x = self.relu2(self.fc2(x))
        x = self.tanh(self.fc3(x))
        return self.out(x)


@dataclass
class Run:
    """What a training run did: its losses and test accuracy, and whether an alert stopped it."""

    trial: str
    losses: list[float]
    test_accuracy: float
    stopped_by: str | None = None


def load_data(seed: int) -> tuple[torch.Tensor, ...]:
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data.astype(np.float32), digits.target, test_size=0.2, random_state=seed,
        stratify=digits.target)
    mean, std = x_train.mean(0), x_train.std(0)
    std[std == 0] = 1.0  # pixels that are blank in every training image
    scale = lambda x: torch.from_numpy((x - mean) / std)  # noqa: E731
    return scale(x_train), torch.from_numpy(y_train), scale(x_test), torch.from_numpy(y_test)


def build(variant: str, lr: float = 0.01) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The model and optimizer of ``variant``, with its planted mistake."""
    model = DigitsMLP()
    groups = [{"params": model.parameters()}]
    if variant == "frozen":
        first = list(model.fc1.parameters())
        rest = [p for p in model.parameters() if all(p is not f for f in first)]
        groups = [{"params": first, "lr": 0.0}, {"params": rest}]
    elif variant == "tanh-saturated":
        with torch.no_grad():
            units = model.fc3.bias[: 3 * len(model.fc3.bias) // 4]
            units.copy_(50.0 * torch.randn_like(units).sign())
    elif variant == "poor-init":
        with torch.no_grad():
            model.fc1.weight.copy_(torch.randn_like(model.fc1.weight))
            model.fc2.weight.copy_(torch.randn_like(model.fc2.weight))
    elif variant not in ("healthy", "stuck-loss"):
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    return model, torch.optim.Adam(groups, lr=lr)


def train(variant: str, hook: TrainsentryHook, steps: int = 150, seed: int = 0,
          should_stop: Callable[[], str | None] = lambda: None, log: Callable[[str], None] = print) -> Run:
    """Train ``variant`` for ``steps`` full-batch steps with ``hook`` registered; the run's record."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x_train, y_train, x_test, y_test = load_data(seed)
    model, optimizer = build(variant)
    criterion = nn.CrossEntropyLoss()
    hook.register(model, loss=criterion)
    losses: list[float] = []
    stopped_by = None
    model.train()
    for step in range(steps):
        targets = y_train
        if variant == "stuck-loss":
            targets = y_train[torch.randperm(len(y_train), generator=generator)]
        optimizer.zero_grad()
        loss = criterion(model(x_train), targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step % 10 == 0 or step == steps - 1:
            log(f"step={step} loss={losses[-1]:.6f};")
        stopped_by = should_stop()
        if stopped_by:
            log(f"stopping at step {step}: {stopped_by}")
            break
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    log(f"test accuracy={accuracy:.4f};")
    return Run(hook.trial, losses, accuracy, stopped_by)


def make_hook(trial: str, bootstrap_servers: str | None = None,
              topic_prefix: str | None = None) -> TrainsentryHook:
    """The hook as the examples use it: losses every step, everything else every 10 steps."""
    return TrainsentryHook(trial=trial, save_config=SaveConfig(save_interval=10),
                           collection_configs={"losses": SaveConfig(save_interval=1)},
                           bootstrap_servers=bootstrap_servers, topic_prefix=topic_prefix)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=VARIANTS, default="healthy")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trial", help="default: $TRAINSENTRY_TRIAL (set by trainsentry tap), "
                                        "else digits-<variant>-<random>")
    parser.add_argument("--bootstrap-servers", help="default: $KAFKA_BOOTSTRAP_SERVERS, else localhost:9092")
    parser.add_argument("--topic-prefix", help="default: trainsentry")
    parser.add_argument("--stop-on-alert", action="store_true",
                        help="end the run at the first alert the sidecar raises for it")
    args = parser.parse_args(argv)
    trial = (args.trial or os.environ.get("TRAINSENTRY_TRIAL")
             or f"digits-{args.variant}-{uuid.uuid4().hex[:6]}")
    print(f"trial {trial}: variant {args.variant}", flush=True)
    with make_hook(trial, args.bootstrap_servers, args.topic_prefix) as hook:
        follower = None
        if args.stop_on_alert:
            follower = AlertFollower(trial, bootstrap_servers=args.bootstrap_servers,
                                     topic_prefix=args.topic_prefix)

        def alert_message() -> str | None:
            return follower.alerts[0].message if follower and follower.should_stop() else None

        try:
            run = train(args.variant, hook, args.steps, args.seed, alert_message,
                        log=lambda line: print(line, flush=True))
        finally:
            if follower:
                follower.close()
    return 0 if run.stopped_by is None else 3


if __name__ == "__main__":
    sys.exit(main())
