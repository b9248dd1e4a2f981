"""Acceptance: the unchanged ``kuksa-client`` from PyPI against ``sdv``.

``kuksa-client`` always runs in a subprocess (``kuksa_checks.py``): its generated modules register the same
protobuf symbols as ours, so it is never imported into the test process.

* Reading, metadata and a subscription go to ``sdv serve --port 0`` as a real process, replaying the demo drive.
* Actuation goes to a server in this process, because the frames the HAL sends land on a python-can virtual bus,
  and a virtual bus is only visible within one process: the test observes them there.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import can
import pytest

from sdv.broker.access import UNRESTRICTED
from sdv.hal.vehicle import VehicleDefinition
from tests.client.serving import ACTUATION_CHANNEL, ServerThread
from tests.serve_process import REPOSITORY, serving

CHECKS = Path(__file__).with_name("kuksa_checks.py")
LIGHTING_REQUEST = 0x300


def kuksa_client(mode: str, port: int, timeout: float = 60, *extra: str) -> dict[str, Any]:
    """Run the kuksa-client checks against 127.0.0.1:``port`` and return what they printed."""
    done = subprocess.run(
        [sys.executable, str(CHECKS), mode, "127.0.0.1", str(port), *extra],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPOSITORY,
        check=False,
    )
    assert done.returncode == 0, f"kuksa-client {mode} failed:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def kuksa_client_secured(port: int, token: str, ca: Path) -> dict[str, Any]:
    """The kuksa-client checks with a bearer token over TLS (the server's certificate names localhost)."""
    return kuksa_client("secured", port, 60, token, str(ca))


@pytest.fixture(scope="module")
def serve_process() -> Iterator[int]:
    """``sdv serve --port 0`` as a process; yields its port and stops it with SIGTERM."""
    with serving() as (port, _):
        yield port


@pytest.mark.slow
def test_kuksa_client_reads_speed_its_metadata_and_a_live_subscription(serve_process: int) -> None:
    result = kuksa_client("read", serve_process)
    assert result["server"][0] == "sdv"
    assert result["speed_type"] == "float" and 0 <= result["speed"] <= 300
    assert (result["data_type"], result["entry_type"], result["unit"]) == ("FLOAT", "SENSOR", "km/h")
    speeds = result["speeds"]
    assert len(set(speeds)) >= 5, speeds  # the demo drive moves
    assert all(isinstance(speed, float) and 0 <= speed <= 300 for speed in speeds)


@pytest.fixture
def in_process_server(demo_vehicle: VehicleDefinition) -> Iterator[ServerThread]:
    before = set(threading.enumerate())
    with ServerThread(demo_vehicle) as server:
        yield server
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [t.name for t in set(threading.enumerate()) - before if t.is_alive() and not _process_wide(t)]
        if not left:
            break
        time.sleep(0.05)
    assert not left, f"threads left running: {left}"


def _process_wide(thread: threading.Thread) -> bool:
    # gRPC's asyncio poller lives as long as the process; asyncio's executor threads belong to their loop.
    return "_poll_wrapper" in thread.name or thread.name.startswith("asyncio_")


def test_each_kuksa_client_actuation_sends_the_encoded_frame(
    in_process_server: ServerThread, demo_vehicle: VehicleDefinition
) -> None:
    codec = demo_vehicle.codec("vehicle", "LightingRequest")
    bus = can.Bus(interface="virtual", channel=ACTUATION_CHANNEL, receive_own_messages=False)
    try:
        result = kuksa_client("actuate", in_process_server.port)
        frames = []
        while (frame := bus.recv(0.5)) is not None:
            frames.append(frame)
    finally:
        bus.shutdown()
    assert result == {"target_after_v1": True, "v2_actuate": "ok"}
    requests = [frame for frame in frames if frame.arbitration_id == LIGHTING_REQUEST]
    # v1 Set of the target, then v2 Actuate: one frame each, in that order, with the requested value encoded.
    assert [codec.decode(frame.data)["LowBeamRequest"] for frame in requests] == [1, 0]
    assert (
        in_process_server.broker.target("Vehicle.Body.Lights.Beam.Low.IsOn", access=UNRESTRICTED).value
        is False
    )
