"""Importing the protocol or the training side never loads the Kafka client; it is loaded when a
publisher or a follower starts one. Each case runs in a fresh interpreter: this one has long
imported aiokafka."""

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Everything of the training side that does not need PyTorch.
IMPORTS = """
import importlib, pkgutil, sys
import trainsentry.protocol
import trainsentry.producers
import trainsentry.producers.publisher
for info in pkgutil.walk_packages(trainsentry.producers.__path__, "trainsentry.producers."):
    if not info.name.rsplit(".", 1)[-1].startswith("torch_"):
        importlib.import_module(info.name)
"""


def run_python(*parts: str) -> subprocess.CompletedProcess:
    code = "\n".join(textwrap.dedent(part) for part in parts)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=60)


def test_importing_the_protocol_and_the_training_side_does_not_import_aiokafka() -> None:
    result = run_python(IMPORTS, "print(sorted(m for m in sys.modules if m.split('.')[0] == 'aiokafka'))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_without_aiokafka_the_imports_work_and_starting_a_client_says_what_is_missing() -> None:
    result = run_python("""
        import sys
        sys.modules["aiokafka"] = None  # as if it were not installed: importing it fails
    """, IMPORTS, """
        from trainsentry.producers import AlertFollower, SenderSettings, TensorPublisher
        from tests.producers.recording_sender import RecordingSender

        # Building and encoding events needs no client.
        sender = RecordingSender(SenderSettings())
        publisher = TensorPublisher("no-kafka", sender=sender)
        assert publisher.scalar("loss", 0.5, step=0)
        assert sender.events[0].value == 0.5

        for start in (lambda: TensorPublisher("no-kafka"), lambda: AlertFollower("no-kafka")):
            try:
                start()
            except ModuleNotFoundError as exc:
                assert exc.name == "aiokafka", exc.name
                print(exc)
            else:
                raise AssertionError("a client started without aiokafka")
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("trainsentry: talking to Kafka needs the aiokafka package") for line in lines)
