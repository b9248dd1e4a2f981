"""Fixtures of the SDK tests: the client tests' real servers, and a thread check after every module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import can
import pytest

from sdv.api.server import SdvServer
from sdv.broker import Broker
from sdv.hal.vehicle import VehicleModel

from ..client.conftest import closed_port, server
from ..client.serving import ACTUATION_CHANNEL

__all__ = ["bare_server", "can_observer", "closed_port", "server"]


@pytest.fixture
async def bare_server(demo_vehicle: VehicleModel) -> AsyncIterator[SdvServer]:
    """The demo vehicle's signals on the test's event loop: no HAL, values only as the test publishes them."""
    async with SdvServer(Broker.from_vehicle(demo_vehicle), port=0) as running:
        yield running


@pytest.fixture
def can_observer() -> Iterator[can.BusABC]:
    """The python-can virtual channel the HAL sends actuation frames to."""
    bus = can.Bus(interface="virtual", channel=ACTUATION_CHANNEL, receive_own_messages=False)
    yield bus
    bus.shutdown()
