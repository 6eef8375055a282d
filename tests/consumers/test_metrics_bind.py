"""The metrics endpoint listens where it is told (``--metrics-bind``), on loopback unless told."""

from __future__ import annotations

import time

import pytest

from tests.consumers.test_probes import listening_address
from tests.sidecar_harness import SidecarProcess
from tests.streams import write_config
from trainsentry.consumers.broker import free_port


@pytest.mark.parametrize("bind, expected", [(None, "127.0.0.1"), ("127.0.0.2", "127.0.0.2"),
                                            ("0.0.0.0", "0.0.0.0")])
def test_the_metrics_port_listens_on_the_chosen_address(bootstrap_servers, topics, tmp_path,
                                                         bind, expected) -> None:
    port = free_port()
    extra = ["--metrics-port", str(port)] + ([] if bind is None else ["--metrics-bind", bind])
    sidecar = SidecarProcess(bootstrap_servers, topics, write_config(tmp_path), extra_args=extra).start()
    try:
        sidecar.wait_ready()
        deadline = time.monotonic() + 30
        while True:
            try:
                address = listening_address(port)
                break
            except AssertionError:
                assert sidecar.process.poll() is None and time.monotonic() < deadline, sidecar.stderr
                time.sleep(0.1)
        assert address == expected
    finally:
        assert sidecar.stop() == 0, sidecar.stderr
