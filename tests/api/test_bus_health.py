"""gRPC health per CAN bus, on a real server whose HAL has a bus that is unplugged and plugged back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sdv._proto.kuksa.val.v2 import types_pb2 as t
from sdv._proto.kuksa.val.v2 import val_pb2 as v
from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALStub
from sdv.api.bus_health import bus_health_name
from sdv.api.server import SdvServer
from sdv.broker import Broker, HalBridge
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import VehicleDefinition

from ..hal.flaky_bus import FAST_RECONNECT, Plug, flaky_opener, two_bus_vehicle
from ..waiting import DEADLINE_S, wait_until_async

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"


@dataclass
class Served:
    plug: Plug
    health: health_pb2_grpc.HealthStub
    val: VALStub

    async def status(self, service: str) -> int:
        response = await self.health.Check(health_pb2.HealthCheckRequest(service=service))
        return int(response.status)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """Two buses served: ``vehicle`` on a python-can bus that can be unplugged, ``chassis`` on a virtual bus."""
    vehicle: VehicleDefinition = two_bus_vehicle(tmp_path)
    plug = Plug()
    hal = Hal(vehicle, openers={"vehicle": flaky_opener(vehicle, plug)}, config=FAST_RECONNECT)
    bridge = HalBridge(hal, statistics_period=0.0)
    bridge.start()
    try:
        async with (
            SdvServer(bridge.broker, port=0) as server,
            grpc.aio.insecure_channel(server.target) as channel,
        ):
            yield Served(plug, health_pb2_grpc.HealthStub(channel), VALStub(channel))
    finally:
        bridge.stop()


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = DEADLINE_S) -> None:
    await wait_until_async(condition, what=what, timeout_s=timeout)


def actuate_low_beam(on: bool) -> v.ActuateRequest:
    return v.ActuateRequest(signal_id=t.SignalID(path=LOW_BEAM), value=t.Value(bool=on))


async def test_a_bus_that_fails_is_not_serving_until_it_recovers(served: Served) -> None:
    vehicle, chassis = bus_health_name("vehicle"), bus_health_name("chassis")
    assert vehicle == "sdv.hal.bus.vehicle"
    assert (await served.status(vehicle), await served.status(chassis)) == (SERVING, SERVING)

    served.plug.pull()
    await until(lambda: _is(served, vehicle, NOT_SERVING), "the unplugged bus NOT_SERVING")
    assert await served.status(chassis) == SERVING  # the other bus is unaffected
    assert await served.status("") == SERVING  # the server itself is up
    assert await served.status("kuksa.val.v2.VAL") == SERVING
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await served.val.Actuate(actuate_low_beam(True))
    assert refused.value.code() == grpc.StatusCode.DATA_LOSS  # as every HalError (sdv.api.errors)
    assert "bus vehicle is DOWN" in (refused.value.details() or "")

    served.plug.insert()
    await until(lambda: _is(served, vehicle, SERVING), "the bus SERVING again")
    await served.val.Actuate(actuate_low_beam(True))  # the frame is sent again


async def _is(served: Served, service: str, status: int) -> bool:
    return await served.status(service) == status


async def test_watch_streams_the_bus_going_down_and_up(served: Served) -> None:
    watch = served.health.Watch(health_pb2.HealthCheckRequest(service=bus_health_name("vehicle")))
    try:
        seen = [(await watch.read()).status]
        served.plug.pull()
        seen.append((await asyncio.wait_for(watch.read(), 10)).status)
        served.plug.insert()
        seen.append((await asyncio.wait_for(watch.read(), 10)).status)
    finally:
        watch.cancel()
    assert seen == [SERVING, NOT_SERVING, SERVING]


async def test_a_server_without_bus_states_has_no_bus_health(demo_vehicle: VehicleDefinition) -> None:
    async with (
        SdvServer(Broker.from_vehicle(demo_vehicle), port=0) as server,
        grpc.aio.insecure_channel(server.target) as channel,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=bus_health_name("vehicle"))
            )
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
