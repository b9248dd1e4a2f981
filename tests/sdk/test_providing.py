"""The SDK as a provider against a pure broker (a VSS 4.0 catalogue, no HAL): publishing, providing an
actuator with a handler that answers each request, and one provider per actuator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import sdv
from sdv.api.server import SdvServer
from sdv.broker import Broker
from sdv.errors import ActuationError, AlreadyProvidedError
from sdv.types.datatypes import Value
from sdv.vss import load_catalogue
from tests.vss_files import vss_release

WINDOW = "Vehicle.Cabin.Door.Row1.DriverSide.Window.Position"


@pytest.fixture
async def pure_server() -> AsyncIterator[SdvServer]:
    broker = Broker.from_catalogue(load_catalogue([vss_release("4.0")]))
    async with SdvServer(broker, port=0) as server:
        yield server


async def test_publish_then_read_back(pure_server: SdvServer) -> None:
    async with sdv.connect(pure_server.target) as vehicle:
        await vehicle.publish("Vehicle.Speed", 88.0)
        speed = await vehicle.get("Vehicle.Speed")
    assert speed.value == 88.0 and speed.unit == "km/h"


async def test_the_blocking_sdk_publishes_too(pure_server: SdvServer) -> None:
    def publish_and_read() -> tuple[object, object]:
        with sdv.connect_sync(pure_server.target) as vehicle:
            vehicle.publish("Vehicle.Cabin.SeatPosCount", (2, 3))
            vehicle.publish("Vehicle.Speed", 42.5)
            with pytest.raises(sdv.ValueOutOfRangeError, match="above the maximum"):
                vehicle.publish("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", 101.0)
            return vehicle.get("Vehicle.Cabin.SeatPosCount").value, vehicle.get("Vehicle.Speed").value

    # the blocking SDK runs its own loop in a thread; this test's loop serves meanwhile
    assert await asyncio.to_thread(publish_and_read) == ((2, 3), 42.5)


async def test_provided_actuator_answers_each_request_and_refusals_reach_the_caller(
    pure_server: SdvServer,
) -> None:
    received: list[tuple[str, Value]] = []

    async def window(path: str, value: Value) -> None:
        if value == 100:
            raise ValueError("the window is blocked")
        received.append((path, value))

    async with sdv.connect(pure_server.target) as vehicle, vehicle.provider() as provider:
        await provider.claim_actuators([WINDOW], window)
        await vehicle.actuate(WINDOW, 40)  # returns with the handler's answer
        assert received == [(WINDOW, 40)]
        with pytest.raises(ActuationError, match="the window is blocked"):
            await vehicle.actuate(WINDOW, 100)
        async with vehicle.provider() as second:
            with pytest.raises(AlreadyProvidedError, match="already provided by a client"):
                await second.claim_actuators([WINDOW], window)
