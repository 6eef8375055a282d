import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from tests.producers.kafka_records import read_records  # noqa: E402
from tests.producers.recording_sender import RecordingSender  # noqa: E402
from trainsentry.producers import SaveConfig, SenderSettings, TensorPublisher  # noqa: E402
from trainsentry.producers.torch_hook import TrainsentryHook  # noqa: E402
from trainsentry.protocol import ScalarEvent, TensorEvent  # noqa: E402

pytestmark = pytest.mark.torch


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act = nn.Linear(4, 3), nn.ReLU(inplace=True)
        self.fc2, self.tanh = nn.Linear(3, 3), nn.Tanh()
        self.head = nn.Sequential(nn.Linear(3, 2), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.tanh(self.fc2(self.act(self.fc1(x)))))


def hooked(save_interval: int = 2, **kwargs) -> tuple[TrainsentryHook, RecordingSender, Net, nn.Module]:
    """A hook on a fresh model, recording instead of sending; the loss module is hooked too."""
    torch.manual_seed(0)
    sender = RecordingSender(SenderSettings())
    publisher = TensorPublisher("torch-run", worker="0", sender=sender,
                                save_config=SaveConfig(save_interval=save_interval), **kwargs)
    model, loss_fn = Net(), nn.MSELoss()
    hook = TrainsentryHook(publisher=publisher)
    hook.register(model, loss=loss_fn)
    return hook, sender, model, loss_fn


def train_step(model: Net, loss_fn: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad()
    loss = loss_fn(model(torch.randn(5, 4)), torch.zeros(5, 2))
    loss.backward()
    optimizer.step()


def by_key(sender: RecordingSender) -> dict[tuple[str, int, str], object]:
    return {(e.mode, e.step, e.name): e for e in sender.events}


def test_a_saved_step_publishes_what_the_rules_read() -> None:
    hook, sender, model, loss_fn = hooked()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    weights_at_start = model.fc1.weight.detach().clone()
    train_step(model, loss_fn, optimizer)

    events = by_key(sender)
    names = {name for mode, step, name in events if step == 0}
    assert names == {
        "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "head.0.weight", "head.0.bias",
        "fc1.weight.grad", "fc1.bias.grad", "fc2.weight.grad", "fc2.bias.grad",
        "head.0.weight.grad", "head.0.bias.grad",
        "act.relu_input", "tanh.tanh_input", "head.1.sigmoid_input", "loss"}
    assert events["TRAIN", 0, "fc1.weight"].collections == ("weights",)
    assert events["TRAIN", 0, "fc1.bias"].collections == ("biases",)
    assert events["TRAIN", 0, "fc2.weight.grad"].collections == ("gradients",)
    assert events["TRAIN", 0, "act.relu_input"].collections == ("relu_input",)
    assert isinstance(events["TRAIN", 0, "loss"], ScalarEvent)
    assert events["TRAIN", 0, "loss"].collections == ("losses",)
    # the weights as the step found them, not as the optimizer left them
    np.testing.assert_array_equal(events["TRAIN", 0, "fc1.weight"].array(), weights_at_start.numpy())
    assert not torch.equal(model.fc1.weight, weights_at_start)
    np.testing.assert_array_equal(events["TRAIN", 0, "fc1.weight.grad"].array(), model.fc1.weight.grad.numpy())
    relu_input = events["TRAIN", 0, "act.relu_input"].array()
    assert relu_input.shape == (5, 3) and (relu_input < 0).any()  # copied before ReLU(inplace=True)


def test_steps_count_per_mode_and_globally_and_unsaved_steps_publish_nothing() -> None:
    hook, sender, model, _ = hooked(save_interval=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        model(torch.randn(2, 4)).sum().backward()
        hook.record_loss(0.5)
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 4))
    model.train()
    model(torch.randn(2, 4))
    hook.record_loss(torch.tensor(0.25))

    steps = sorted({(e.mode, e.step, e.global_step) for e in sender.events})
    assert steps == [("EVAL", 0, 3), ("EVAL", 2, 5), ("TRAIN", 0, 0), ("TRAIN", 2, 2)]
    assert (hook.mode, hook.step, hook.global_step) == ("TRAIN", 3, 6)
    assert not any(e.name.endswith(".grad") for e in sender.events if e.mode == "EVAL")
    losses = [(e.mode, e.step, e.value) for e in sender.events if e.name == "loss"]
    assert losses == [("TRAIN", 0, 0.5), ("TRAIN", 2, 0.5)]


def test_collections_can_have_their_own_schedule() -> None:
    hook, sender, model, _ = hooked(save_interval=100,
                                 collection_configs={"losses": SaveConfig(save_interval=1)})
    for _ in range(3):
        model(torch.randn(2, 4))
        hook.record_loss(1.0)
    assert [(e.step, e.name) for e in sender.events if e.step > 0] == [(1, "loss"), (2, "loss")]
    assert hook.record_loss(1.0) is True
    hook.remove()
    model(torch.randn(2, 4))
    assert hook.step == 2  # removed: the model runs unobserved


def test_losses_before_the_first_forward_are_ignored_and_big_tensors_reduced() -> None:
    hook, sender, model, _ = hooked(save_interval=1, reductions_above_bytes=20)
    assert hook.record_loss(1.0) is False
    model(torch.randn(2, 4))
    events = by_key(sender)
    assert events["TRAIN", 0, "fc1.weight"].reductions["count"] == 12.0  # 48 bytes > 20
    assert events["TRAIN", 0, "fc2.bias"].data is not None               # 12 bytes
    hook.close()
    assert sender.closed


def test_worker_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "3")
    hook = TrainsentryHook(trial="ranked", bootstrap_servers="127.0.0.1:1")
    try:
        assert hook.publisher.worker == "3"
    finally:
        hook.close(timeout=0)


def test_importing_the_package_does_not_import_torch() -> None:
    code = "import sys, trainsentry.producers; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False"


def test_a_hooked_model_publishes_to_kafka(bootstrap_servers: str, topics) -> None:
    torch.manual_seed(0)
    model = Net()
    loss_fn = nn.MSELoss()
    with TrainsentryHook(trial="hooked", save_interval=1, bootstrap_servers=bootstrap_servers,
                         topic_prefix=topics.prefix) as hook:
        hook.register(model, loss=loss_fn)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(2):
            train_step(model, loss_fn, optimizer)
    records = read_records(bootstrap_servers, topics.tensors, 32)
    assert len(records) == 32 and {key for key, _ in records} == {b"hooked"}
    grads = [e for _, e in records if isinstance(e, TensorEvent) and e.name == "fc1.weight.grad"]
    assert [e.step for e in grads] == [0, 1] and grads[0].array().shape == (3, 4)


class Functional(nn.Module):
    """Activations called as functions, the common style, beside one nn.ReLU module."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Linear(4, 4)
        self.act = nn.ReLU()
        self.out = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, fail: bool = False) -> torch.Tensor:
        h = torch.tanh(self.act(self.block(x))) + nn.functional.relu(x).sigmoid()
        if fail:
            raise RuntimeError("a forward that fails")
        return self.out(nn.functional.relu(h))


def test_functional_activations_are_captured_at_saved_steps_only() -> None:
    sender = RecordingSender(SenderSettings())
    hook = TrainsentryHook(publisher=TensorPublisher(
        "functional", sender=sender, save_config=SaveConfig(save_interval=2)))
    model = Functional()
    hook.register(model)
    for _ in range(3):
        model(torch.randn(3, 4)).sum().backward()

    inputs = {(e.step, e.name, e.collections) for e in sender.events if "_input" in e.name}
    per_step = [("act.relu_input", "relu_input"), ("model.relu_input", "relu_input"),
                ("model.relu_input_1", "relu_input"), ("model.sigmoid_input", "sigmoid_input"),
                ("model.tanh_input", "tanh_input")]
    assert inputs == {(step, name, (collection,)) for step in (0, 2) for name, collection in per_step}
    tanh_input = next(e for e in sender.events if e.name == "model.tanh_input")
    assert tanh_input.array().shape == (3, 4)


def test_a_forward_that_raises_leaves_no_tracing_behind() -> None:
    sender = RecordingSender(SenderSettings())
    hook = TrainsentryHook(publisher=TensorPublisher(
        "raising", sender=sender, save_config=SaveConfig(save_interval=1)))
    model = Functional()
    hook.register(model)
    with pytest.raises(RuntimeError, match="fails"):
        model(torch.randn(3, 4), fail=True)
    captured = len(sender.events)
    torch.tanh(torch.zeros(2))  # outside the model: nobody is watching any more
    assert len(sender.events) == captured
    from torch.overrides import _get_current_function_mode_stack
    assert _get_current_function_mode_stack() == []


def test_a_hooked_model_can_still_be_copied_and_saved() -> None:
    import copy
    import io

    hook, sender, model, loss_fn = hooked(save_interval=1)
    model(torch.randn(2, 4))  # mid-step: the per-step hooks are in place too
    ema = copy.deepcopy(model)
    torch.save(model, io.BytesIO())
    published = len(sender.events)
    ema(torch.randn(2, 4))  # the copy is not the observed model
    assert len(sender.events) == published
    model(torch.randn(2, 4))
    assert len(sender.events) > published


def test_a_tensor_that_cannot_be_captured_does_not_break_the_step(monkeypatch, caplog) -> None:
    hook, sender, model, loss_fn = hooked(save_interval=1)
    from trainsentry.producers import torch_hook

    def broken(tensor):
        raise RuntimeError("cannot copy this tensor")

    monkeypatch.setattr(torch_hook, "TensorSnapshot", broken)
    for _ in range(2):
        loss_fn(model(torch.randn(2, 4)), torch.zeros(2, 2)).backward()  # forward and backward run
    messages = [r.getMessage() for r in caplog.records if "cannot capture" in r.getMessage()]
    assert "trainsentry: cannot capture fc1.weight; training goes on without it" in messages
    assert len(messages) == len(set(messages))  # once per tensor, not once per step


def test_labels_and_predictions_at_saved_steps_as_class_ids() -> None:
    hook, sender, model, _ = hooked(save_interval=2)
    assert hook.record_labels(torch.tensor([1, 0])) is False  # before the first forward
    for _ in range(2):
        scores = model(torch.randn(3, 4))  # two classes on the last axis
        hook.record_predictions(scores)
        hook.record_labels(torch.tensor([1, 0, 1]))
    model.eval()
    with torch.no_grad():
        scores = model(torch.randn(3, 4))
        assert hook.record_predictions(scores, argmax=False)
        assert hook.record_labels([0, 0, 1])
    events = by_key(sender)
    assert ("TRAIN", 1, "labels") not in events  # step 1 is not saved
    predicted = events["TRAIN", 0, "predictions"]
    assert predicted.collections == ("predictions",) and predicted.array().shape == (3,)
    assert events["TRAIN", 0, "labels"].array().tolist() == [1, 0, 1]
    assert events["EVAL", 0, "predictions"].array().shape == (3, 2)  # scores, as asked
    assert events["EVAL", 0, "labels"].collections == ("labels",)


def test_the_loss_in_train_and_in_eval_mode_for_overfit() -> None:
    hook, sender, model, loss_fn = hooked(save_interval=1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train_step(model, loss_fn, optimizer)
    model.eval()
    with torch.no_grad():
        loss_fn(model(torch.randn(5, 4)), torch.zeros(5, 2))  # validation: an EVAL step
    model.train()
    train_step(model, loss_fn, optimizer)
    losses = [(e.mode, e.step, e.global_step) for e in sender.events if e.name == "loss"]
    assert losses == [("TRAIN", 0, 0), ("EVAL", 0, 1), ("TRAIN", 1, 2)]
    assert {e.session for e in sender.events} == {sender.events[0].session} != {None}
