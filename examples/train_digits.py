"""Train a small MLP on scikit-learn's digits, healthy or with one planted bug, under trainsentry.

    python examples/train_digits.py --variant healthy
    python examples/train_digits.py --variant frozen --stop-on-alert

Each variant is a mistake people make, and trips its rule of ``examples/rules.toml`` (``healthy``
trips none; :data:`ALSO_TRIPS` says what else a run that learns nothing trips):

======================  =============================================================  ========================
variant                 the mistake                                                    rule
======================  =============================================================  ========================
``healthy``             none                                                           none
``frozen``              the first layer's parameter group has ``lr=0``                 WeightUpdateRatio
``tanh-saturated``      the tanh layer's bias drawn with std 50 instead of zeros        SaturatedActivation
``poor-init``           ReLU layers drawn from ``randn`` (std 1, no fan-in scaling)    PoorWeightInitialization
``stuck-loss``          labels shuffled apart from their images at every step          LossNotDecreasing
``nan-lr``              a warm-up schedule computes the learning rate as 0/0 = NaN     ExplodingTensor
``vanishing-gradient``  ten sigmoid layers stacked instead of two ReLU layers          VanishingGradient
``dead-relu``           the second ReLU layer's bias starts at -6 on 3 of 4 units      DeadRelu
``overfit``             trained on 30 images, validated on the held-out ones           Overfit
``class-imbalance``     the data keeps every 0 but 1 in 20 of the other digits         ClassImbalance
======================  =============================================================  ========================

Training is full-batch Adam on 80% of the 1,797 digits (shipped with scikit-learn: no download), so
a healthy loss goes down at every step and the run takes a few seconds on a CPU. The hook saves
the loss at every step and the rest every 10 steps. The ``overfit`` variant validates every 20
steps: a forward pass after ``model.eval()`` is an EVAL step, so the hook publishes the
validation loss beside the training loss, which Overfit compares. Every run ends with an EVAL pass
over the held-out images that publishes their labels and predicted classes
(``hook.record_labels``, ``hook.record_predictions``), which ClassImbalance counts. Run the sidecar
beside it (``trainsentry run --config examples/rules.toml``) to see the alerts;
``--stop-on-alert`` ends the run at the first one, as SageMaker Debugger's StopTraining action would.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from trainsentry.producers import AlertFollower, SaveConfig
from trainsentry.producers.torch_hook import TrainsentryHook

EXPECTED_RULE = {
    "healthy": None,
    "frozen": "WeightUpdateRatio",
    "tanh-saturated": "SaturatedActivation",
    "poor-init": "PoorWeightInitialization",
    "stuck-loss": "LossNotDecreasing",
    "nan-lr": "ExplodingTensor",
    "vanishing-gradient": "VanishingGradient",
    "dead-relu": "DeadRelu",
    "overfit": "Overfit",
    "class-imbalance": "ClassImbalance",
}
VARIANTS = tuple(EXPECTED_RULE)
# What else a variant trips, and why: a run that learns nothing mispredicts every held-out class
# (ClassImbalance); ten sigmoid layers that pass almost no gradient back also fail the
# initialisation check of the gradients' spread (PoorWeightInitialization), and their loss, stuck
# near ln 10, may stop falling (LossNotDecreasing) within the steps run.
ALSO_TRIPS = {
    "stuck-loss": {"ClassImbalance"},
    "nan-lr": {"ClassImbalance"},
    "vanishing-gradient": {"PoorWeightInitialization", "ClassImbalance"},
}
MAY_TRIP = {"vanishing-gradient": {"LossNotDecreasing"}}
VALIDATE_EVERY = {"overfit": 20}  # steps between validation passes (EVAL losses), per variant


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


class DeepSigmoidMLP(nn.Module):
    """64 pixels -> ten Linear+Sigmoid layers -> 10 classes: each sigmoid scales the gradient
    flowing back through it by at most 1/4, so the first layers' gradients all but vanish."""

    def __init__(self, hidden: int = 32, depth: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(64 if i == 0 else hidden, hidden), nn.Sigmoid()]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


@dataclass
class Run:
    """What a training run did: its losses and test accuracy, and whether an alert stopped it."""

    trial: str
    losses: list[float]
    test_accuracy: float
    stopped_by: str | None = None


def load_data(seed: int, variant: str = "healthy") -> tuple[torch.Tensor, ...]:
    """Standardised (train images, train labels, held-out images, held-out labels) of ``variant``."""
    digits = load_digits()
    x, y = digits.data.astype(np.float32), digits.target
    if variant == "class-imbalance":  # every 0, but only 1 in 20 of each other digit
        keep = (y == 0) | (np.arange(len(y)) % 20 == 0)
        x, y = x[keep], y[keep]
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=seed, stratify=y)
    if variant == "overfit":  # three images of each digit to learn from
        few = np.concatenate([np.flatnonzero(y_train == digit)[:3] for digit in range(10)])
        x_train, y_train = x_train[few], y_train[few]
    mean, std = x_train.mean(0), x_train.std(0)
    std[std == 0] = 1.0  # pixels that are blank in every training image
    scale = lambda x: torch.from_numpy((x - mean) / std)  # noqa: E731
    return scale(x_train), torch.from_numpy(y_train), scale(x_test), torch.from_numpy(y_test)


def build(variant: str, lr: float = 0.01) -> tuple[nn.Module, torch.optim.Optimizer]:
    """The model and optimizer of ``variant``, with its planted mistake."""
    model: nn.Module = DeepSigmoidMLP() if variant == "vanishing-gradient" else DigitsMLP()
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
    elif variant == "dead-relu":
        with torch.no_grad():
            units = model.fc2.bias[: 3 * len(model.fc2.bias) // 4]
            units.fill_(-6.0)
    elif variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    optimizer = torch.optim.Adam(groups, lr=lr)
    if variant == "nan-lr":  # what a warm-up schedule with warmup_steps = 0 computes: 0 / 0
        with np.errstate(invalid="ignore"):
            warmed_up = float(np.float64(0.0) / np.float64(0.0))
        for group in optimizer.param_groups:
            group["lr"] = lr * warmed_up
    return model, optimizer


def train(variant: str, hook: TrainsentryHook, steps: int = 150, seed: int = 0,
          should_stop: Callable[[], str | None] = lambda: None, log: Callable[[str], None] = print) -> Run:
    """Train ``variant`` for ``steps`` full-batch steps with ``hook`` registered; the run's record."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    x_train, y_train, x_test, y_test = load_data(seed, variant)
    model, optimizer = build(variant)
    validate_every = VALIDATE_EVERY.get(variant)
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
        if validate_every and step % validate_every == validate_every - 1:
            model.eval()  # an EVAL step: the hook publishes this loss in EVAL mode
            with torch.no_grad():
                log(f"step={step} validation loss={criterion(model(x_test), y_test).item():.6f};")
            model.train()
        stopped_by = should_stop()
        if stopped_by:
            log(f"stopping at step {step}: {stopped_by}")
            break
    model.eval()
    with torch.no_grad():
        scores = model(x_test)
        hook.record_predictions(scores)  # published as class ids (argmax)
        hook.record_labels(y_test)
        accuracy = (scores.argmax(1) == y_test).float().mean().item()
    log(f"test accuracy={accuracy:.4f};")
    return Run(hook.trial, losses, accuracy, stopped_by)


def make_hook(trial: str, bootstrap_servers: str | None = None,
              topic_prefix: str | None = None) -> TrainsentryHook:
    """The hook as the examples use it: losses, labels and predictions whenever they are
    recorded, everything else every 10 steps."""
    every_step = SaveConfig(save_interval=1)
    return TrainsentryHook(trial=trial, save_config=SaveConfig(save_interval=10),
                           collection_configs={"losses": every_step, "labels": every_step,
                                               "predictions": every_step},
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
