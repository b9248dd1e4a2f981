"""A real server on 127.0.0.1 (ephemeral port) serving the typed services over the demo vehicle.

The HAL replays the demo drive in real time through :class:`~sdv.broker.HalBridge`, from its twelfth second on
(the car stands still before), looping over 30 s of city driving; frames it sends for actuators
go to the python-can virtual channel ``sdv.vehicle``, where :func:`can_observer` receives them. Every fixture
stops what it started, and :func:`no_leaked_threads` fails a test that leaves a thread behind.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import can
import grpc
import pytest

from sdv._proto.sdv.adas.v1 import adas_pb2_grpc
from sdv._proto.sdv.cockpit.v1 import cockpit_pb2_grpc
from sdv.api.server import SdvServer
from sdv.broker import HalBridge
from sdv.broker.access import UNRESTRICTED
from sdv.hal.runtime import Hal
from sdv.hal.sources import RecordingSource, read_recording
from sdv.hal.vehicle import VehicleDefinition
from sdv.resources import demo_recording

from ..waiting import wait_until

ACTUATION_CHANNEL = "sdv.vehicle"
DRIVE_WINDOW = (12.0, 42.0)
"""Seconds of the demo drive replayed: the car moves off at once, so speed changes from the first frame."""


@pytest.fixture(autouse=True)
def no_leaked_threads(no_leaked_threads: None) -> None:
    """Every test of this package runs under the shared leaked-thread check (tests/conftest.py)."""


@pytest.fixture(scope="session")
def moving_drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A candump log of :data:`DRIVE_WINDOW` of the demo drive."""
    path = tmp_path_factory.mktemp("drive") / "moving.log"
    frames = read_recording(demo_recording())
    first = next(frames)
    start, end = first.timestamp + DRIVE_WINDOW[0], first.timestamp + DRIVE_WINDOW[1]
    with can.CanutilsLogWriter(path) as writer:
        for frame in frames:
            if frame.timestamp >= end:
                break
            if frame.timestamp >= start:
                writer.on_message_received(frame)
    return path


@pytest.fixture
def bridge(demo_vehicle: VehicleDefinition, moving_drive: Path) -> Iterator[HalBridge]:
    """The HAL replaying the moving drive into a broker; entered once the first speed arrived."""
    source = RecordingSource("vehicle", moving_drive, realtime=True, loop=True)
    bridge = HalBridge(Hal(demo_vehicle, sources={"vehicle": source}), statistics_period=0.5)
    bridge.start()
    try:
        wait_until(
            lambda: bridge.broker.get("Vehicle.Speed", access=UNRESTRICTED).value is not None,
            what="the HAL to publish Vehicle.Speed",
        )
        yield bridge
    finally:
        bridge.stop()


@pytest.fixture
def replay(bridge: HalBridge) -> RecordingSource:
    """The demo drive's recording, to pause and resume."""
    source = bridge.hal.sources["vehicle"]
    assert isinstance(source, RecordingSource)
    return source


@pytest.fixture
async def server(bridge: HalBridge, demo_vehicle: VehicleDefinition) -> AsyncIterator[SdvServer]:
    server = SdvServer(bridge.broker, port=0, services=demo_vehicle.config.services)
    await server.start()
    yield server
    await server.stop(grace=0)


@pytest.fixture
async def channel(server: SdvServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.target) as channel:
        yield channel


@pytest.fixture
def cockpit(channel: grpc.aio.Channel) -> cockpit_pb2_grpc.CockpitStub:
    return cockpit_pb2_grpc.CockpitStub(channel)


@pytest.fixture
def adas(channel: grpc.aio.Channel) -> adas_pb2_grpc.AdasStub:
    return adas_pb2_grpc.AdasStub(channel)


@pytest.fixture
def can_observer() -> Iterator[can.BusABC]:
    """A python-can virtual bus on the channel the HAL sends actuation frames to."""
    bus = can.Bus(interface="virtual", channel=ACTUATION_CHANNEL, receive_own_messages=False)
    yield bus
    bus.shutdown()


def frames(bus: can.BusABC, window: float = 0.2) -> list[can.Message]:
    """Every frame that arrives on ``bus`` within ``window`` seconds."""
    received = []
    deadline = time.monotonic() + window
    while (remaining := deadline - time.monotonic()) > 0:
        frame = bus.recv(timeout=remaining)
        if frame is not None:
            received.append(frame)
    return received
