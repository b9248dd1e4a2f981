"""``sdv.cockpit.v1.Cockpit`` end to end: a real server, the demo drive replaying in real time."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import can
import grpc
import pytest
from grpc import StatusCode as Code
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sdv._proto.sdv.cockpit.v1 import cockpit_pb2 as c
from sdv._proto.sdv.cockpit.v1 import cockpit_pb2_grpc
from sdv.api.server import ADAS, COCKPIT, SdvServer
from sdv.broker import HalBridge
from sdv.hal.profile import ServicesConfig
from sdv.hal.vehicle import VehicleDefinition
from sdv.services import COCKPIT_FIELDS
from tests.services.conftest import frames

from ..waiting import wait_until_async

LIGHTING_REQUEST, CLIMATE_REQUEST = 0x300, 0x301


async def _collect(
    stream: grpc.aio.UnaryStreamCall[c.StreamClusterStateRequest, c.ClusterState], seconds: float
) -> list[tuple[float, c.ClusterState]]:
    received: list[tuple[float, c.ClusterState]] = []
    deadline = time.monotonic() + seconds
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            state = await asyncio.wait_for(stream.read(), remaining)
            assert isinstance(state, c.ClusterState)
            received.append((time.monotonic(), state))
    except TimeoutError:
        pass
    finally:
        stream.cancel()
    return received


async def test_the_cluster_state_has_every_mapped_field(cockpit: cockpit_pb2_grpc.CockpitStub) -> None:
    async def complete() -> c.ClusterState | None:
        state = await cockpit.GetClusterState(c.GetClusterStateRequest())
        return state if all(state.HasField(name) for name in COCKPIT_FIELDS) else None

    # BodyStatus and ClimateStatus arrive every 100 and 200 ms: every field has a value shortly.
    state = await wait_until_async(complete, what="a cluster state with every mapped field")
    assert state.gear in (-1, 0, 126, 127)
    assert 0 <= state.state_of_charge <= 100
    assert abs(state.timestamp.ToMicroseconds() / 1e6 - time.time()) < 1


async def test_the_cluster_stream_delivers_changing_speed(cockpit: cockpit_pb2_grpc.CockpitStub) -> None:
    stream = cockpit.StreamClusterState(c.StreamClusterStateRequest(max_rate_hz=0))
    speeds: set[float] = set()
    deadline = time.monotonic() + 10
    try:
        async for state in stream:
            if state.HasField("speed"):
                speeds.add(state.speed)
            if len(speeds) >= 3 or time.monotonic() > deadline:
                break
    finally:
        stream.cancel()
    assert len(speeds) >= 3, speeds


@pytest.mark.slow
async def test_the_cluster_stream_honours_max_rate_hz(cockpit: cockpit_pb2_grpc.CockpitStub) -> None:
    unlimited = await _collect(cockpit.StreamClusterState(c.StreamClusterStateRequest(max_rate_hz=0)), 1.0)
    limited = await _collect(cockpit.StreamClusterState(c.StreamClusterStateRequest(max_rate_hz=4)), 2.0)
    # 4 Hz over 2 s: the first state at once, then at most one every 250 ms.
    assert 3 <= len(limited) <= 4 * 2 + 1, len(limited)
    gaps = [later - earlier for (earlier, _), (later, _) in itertools.pairwise(limited)]
    assert min(gaps) > 0.2, gaps
    assert len(unlimited) > len(limited), (len(unlimited), len(limited))


async def test_set_low_beam_answers_after_the_frame_was_sent(
    cockpit: cockpit_pb2_grpc.CockpitStub, can_observer: can.BusABC, demo_vehicle: VehicleDefinition
) -> None:
    for on in (True, False):
        result = await cockpit.SetLowBeam(c.SetLowBeamRequest(on=on))
        assert result.path == "Vehicle.Body.Lights.Beam.Low.IsOn"
        assert abs(result.sent.ToMicroseconds() / 1e6 - time.time()) < 1
        # The frame was sent before the call returned: it is already waiting on the bus.
        sent = [frame for frame in frames(can_observer) if frame.arbitration_id == LIGHTING_REQUEST]
        assert sent
        decoded = demo_vehicle.codec("vehicle", "LightingRequest").decode(sent[-1].data)
        assert decoded["LowBeamRequest"] == int(on)


async def test_set_cabin_temperature_sends_the_request(
    cockpit: cockpit_pb2_grpc.CockpitStub, can_observer: can.BusABC, demo_vehicle: VehicleDefinition
) -> None:
    result = await cockpit.SetCabinTemperature(c.SetCabinTemperatureRequest(celsius=21))
    assert result.path == "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
    sent = [frame for frame in frames(can_observer) if frame.arbitration_id == CLIMATE_REQUEST]
    assert sent
    decoded = demo_vehicle.codec("vehicle", "ClimateRequest").decode(sent[-1].data)
    assert decoded["CabinTemperatureRequest"] == pytest.approx(21)


# VSS 4.0 has whole degrees (int8) for the station temperature: 21.5 is refused, not silently rounded
@pytest.mark.parametrize("celsius", [35.0, 15.5, 21.5, float("nan")])
async def test_an_out_of_range_cabin_temperature_is_invalid_and_sends_nothing(
    cockpit: cockpit_pb2_grpc.CockpitStub, can_observer: can.BusABC, celsius: float
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await cockpit.SetCabinTemperature(c.SetCabinTemperatureRequest(celsius=celsius))
    assert refused.value.code() == Code.INVALID_ARGUMENT
    assert "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature" in (refused.value.details() or "")
    assert [frame for frame in frames(can_observer) if frame.arbitration_id == CLIMATE_REQUEST] == []


async def test_a_command_without_a_mapped_actuator_is_unimplemented(bridge: HalBridge) -> None:
    services = ServicesConfig(cockpit={"speed": "Vehicle.Speed"})
    async with (
        SdvServer(bridge.broker, port=0, services=services) as server,
        grpc.aio.insecure_channel(server.target) as channel,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await cockpit_pb2_grpc.CockpitStub(channel).SetLowBeam(c.SetLowBeamRequest(on=True))
    assert refused.value.code() == Code.UNIMPLEMENTED
    assert "services.cockpit.low_beam" in (refused.value.details() or "")


async def _listed(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests() -> AsyncIterator[reflection_pb2.ServerReflectionRequest]:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for response in stub.ServerReflectionInfo(requests()):
        return {service.name for service in response.list_services_response.service}
    return set()


async def test_typed_services_are_listed_and_healthy(channel: grpc.aio.Channel) -> None:
    assert {COCKPIT, ADAS} <= await _listed(channel)
    health = health_pb2_grpc.HealthStub(channel)
    for service in (COCKPIT, ADAS):
        response = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_without_a_mapping_the_typed_services_are_not_served(bridge: HalBridge) -> None:
    async with (
        SdvServer(bridge.broker, port=0) as server,
        grpc.aio.insecure_channel(server.target) as channel,
    ):
        assert not {COCKPIT, ADAS} & await _listed(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await cockpit_pb2_grpc.CockpitStub(channel).GetClusterState(c.GetClusterStateRequest())
    assert refused.value.code() == Code.UNIMPLEMENTED
