"""A real gRPC server on 127.0.0.1 (ephemeral port) over the demo vehicle, with the HAL replaying the demo drive.

The demo profile's bus replays the recording in real time; frames the HAL sends (actuation) go to the python-can
virtual channel ``sdv.vehicle``, where :func:`can_observer` receives them. Every fixture stops what it started,
and :func:`no_leaked_threads` fails a test that leaves a thread behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import can
import grpc
import pytest

from sdv._proto.kuksa.val.v1 import val_pb2_grpc as val_v1_grpc
from sdv._proto.kuksa.val.v2 import val_pb2_grpc as val_v2_grpc
from sdv.api.server import SdvServer
from sdv.broker import Broker, HalProvider, Owner, OwnerKind
from sdv.broker.access import UNRESTRICTED
from sdv.broker.hal_bridge import hal_actuator_paths, hal_owned_paths
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import VehicleDefinition, load_vehicle
from sdv.resources import demo_profile

ACTUATION_CHANNEL = "sdv.vehicle"


@pytest.fixture(autouse=True)
def no_leaked_threads(no_leaked_threads: None) -> None:
    """Every test of this package runs under the shared leaked-thread check (tests/conftest.py)."""


@pytest.fixture(scope="session")
def demo_vehicle() -> VehicleDefinition:
    return load_vehicle(demo_profile())


@dataclass
class Stack:
    broker: Broker
    hal: Hal
    hal_provider: Owner  # the HAL as provider of the actuators it encodes
    hal_signals: Owner  # the HAL as owner of the signals it feeds


@pytest.fixture
def stack(demo_vehicle: VehicleDefinition) -> Iterator[Stack]:
    """The broker, fed by the HAL replaying the demo drive, with the HAL providing every actuator and owning the
    signals it feeds (as ``HalBridge`` does)."""
    broker = Broker.from_vehicle(demo_vehicle)
    hal = Hal(demo_vehicle)
    signals = broker.claim_signals(hal_owned_paths(demo_vehicle), Owner(OwnerKind.HAL), access=UNRESTRICTED)
    hal.start(broker.publish)
    actuators = hal_actuator_paths(demo_vehicle)
    handle = broker.claim_actuators(actuators, Owner(OwnerKind.HAL), HalProvider(hal), access=UNRESTRICTED)
    yield Stack(broker, hal, handle, signals)
    hal.stop()


@pytest.fixture
def broker(stack: Stack) -> Broker:
    return stack.broker


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
