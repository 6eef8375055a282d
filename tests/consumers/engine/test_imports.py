"""The engine is pure: importing it needs neither Kafka's client nor anything of the sidecar."""

from __future__ import annotations

import subprocess
import sys

_IMPORT = """
import sys
sys.modules["aiokafka"] = None  # any import of it now raises ImportError
from trainsentry.consumers.engine import Engine, alert_id
from trainsentry.rules.config import Config
from trainsentry.protocol import ScalarEvent
engine = Engine(Config.default())
engine.process(ScalarEvent("run-1", 1.0, "TRAIN", 0, "loss", 1.0, collections=("losses",)))
loaded = sorted(name for name, module in sys.modules.items()
                if module is not None and name.startswith(("aiokafka", "prometheus_client")))
print(",".join(loaded) or "none")
"""


def test_the_engine_imports_and_runs_without_aiokafka():
    run = subprocess.run([sys.executable, "-c", _IMPORT], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "none"
