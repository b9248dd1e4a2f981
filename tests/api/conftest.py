"""A real gRPC server on 127.0.0.1 (ephemeral port) over the demo vehicle, with the HAL replaying the demo drive.

The demo profile's bus replays the recording in real time; frames the HAL sends (actuation) go to the python-can
virtual channel ``sdv.vehicle``, where :func:`can_observer` receives them. Every fixture stops what it started,
and :func:`no_leaked_threads` fails a test that leaves a thread behind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator

import can
import grpc
import pytest

from sdv.api._proto.kuksa.val.v1 import val_pb2_grpc as val_v1_grpc
from sdv.api._proto.kuksa.val.v2 import val_pb2_grpc as val_v2_grpc
from sdv.api.server import SdvServer
from sdv.broker import Broker, HalProvider
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import VehicleModel, load_vehicle
from sdv.resources import demo_profile

ACTUATION_CHANNEL = "sdv.vehicle"


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        # The event loop's executor threads belong to the loop (pytest-asyncio closes it); gRPC's asyncio poller
        # thread lives as long as the process.
        leaked = [
            thread
            for thread in set(threading.enumerate()) - before
            if thread.is_alive() and not thread.name.startswith("asyncio_") and "_poll_wrapper" not in thread.name
        ]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"threads left running: {[thread.name for thread in leaked]}"


@pytest.fixture(scope="session")
def demo_vehicle() -> VehicleModel:
    return load_vehicle(demo_profile())


@pytest.fixture
def broker(demo_vehicle: VehicleModel) -> Iterator[Broker]:
    """The broker, fed by the HAL replaying the demo drive, with the HAL providing every actuator."""
    broker = Broker.from_vehicle(demo_vehicle)
    hal = Hal(demo_vehicle)
    hal.start(broker.publish)
    actuators = [path for path, signal in demo_vehicle.signals.items() if signal.kind == "actuator"]
    broker.register_actuation_provider(actuators, HalProvider(hal))
    yield broker
    hal.stop()


@pytest.fixture
async def server(broker: Broker) -> AsyncIterator[SdvServer]:
    server = SdvServer(broker, port=0)
    await server.start()
    yield server
    await server.stop(grace=0)


@pytest.fixture
async def channel(server: SdvServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.target) as channel:
        yield channel


@pytest.fixture
def v2(channel: grpc.aio.Channel) -> val_v2_grpc.VALStub:
    return val_v2_grpc.VALStub(channel)


@pytest.fixture
def v1(channel: grpc.aio.Channel) -> val_v1_grpc.VALStub:
    return val_v1_grpc.VALStub(channel)


@pytest.fixture
def can_observer() -> Iterator[can.BusABC]:
    """A python-can virtual bus on the channel the HAL sends actuation frames to."""
    bus = can.Bus(interface="virtual", channel=ACTUATION_CHANNEL, receive_own_messages=False)
    yield bus
    bus.shutdown()
