"""Fixtures of the SDK tests: the client tests' real servers, and a thread check after every module."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator

import can
import pytest
from pydantic import PrivateAttr

from sdv.api.server import SdvServer
from sdv.broker import Broker, HalBridge
from sdv.hal.vehicle import VehicleDefinition
from sdv.sdk import ReconnectPolicy

from ..client.conftest import closed_port, server
from ..client.serving import ACTUATION_CHANNEL
from ..services.conftest import bridge, moving_drive

__all__ = [
    "ObservedPolicy",
    "bare_server",
    "bare_typed_server",
    "bridge",
    "can_observer",
    "closed_port",
    "moving_drive",
    "server",
    "typed_server",
]

SEVERAL_FAILED = 3
"""Reconnection attempts in a row that :attr:`ObservedPolicy.several_failed` waits for."""


class ObservedPolicy(ReconnectPolicy):
    """A reconnection policy that tells the test when several attempts in a row failed.

    The SDK asks the policy for the wait before each attempt, passing the attempts that failed so far: that is
    the event a test waits on to know the client has been retrying against a dead server.
    """

    _several_failed: asyncio.Event = PrivateAttr(default_factory=asyncio.Event)

    @property
    def several_failed(self) -> asyncio.Event:
        """Set once :data:`SEVERAL_FAILED` attempts in a row failed."""
        return self._several_failed

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        if attempt >= SEVERAL_FAILED:
            self._several_failed.set()
        return super().delay(attempt, rng)


@pytest.fixture
async def bare_server(demo_vehicle: VehicleDefinition) -> AsyncIterator[SdvServer]:
    """The demo vehicle's signals on the test's event loop: no HAL, values only as the test publishes them."""
    async with SdvServer(Broker.from_vehicle(demo_vehicle), port=0) as running:
        yield running


@pytest.fixture
async def bare_typed_server(demo_vehicle: VehicleDefinition) -> AsyncIterator[SdvServer]:
    """As :func:`bare_server`, also serving the typed services as the demo profile maps them."""
    broker = Broker.from_vehicle(demo_vehicle)
    async with SdvServer(broker, port=0, services=demo_vehicle.config.services) as running:
        yield running


@pytest.fixture
async def typed_server(bridge: HalBridge, demo_vehicle: VehicleDefinition) -> AsyncIterator[SdvServer]:
    """The typed services of the demo profile on the test's event loop, the demo drive replaying in real time."""
    async with SdvServer(bridge.broker, port=0, services=demo_vehicle.config.services) as running:
        yield running


@pytest.fixture
def can_observer() -> Iterator[can.BusABC]:
    """The python-can virtual channel the HAL sends actuation frames to."""
    bus = can.Bus(interface="virtual", channel=ACTUATION_CHANNEL, receive_own_messages=False)
    yield bus
    bus.shutdown()
