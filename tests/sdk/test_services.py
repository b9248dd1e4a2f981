"""``vehicle.cockpit`` and ``vehicle.adas`` against a real server, the demo drive replaying in real time."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from datetime import UTC, datetime

import can
import pytest

import sdv
from sdv._proto.sdv.adas.v1 import adas_pb2
from sdv._proto.sdv.cockpit.v1 import cockpit_pb2
from sdv.api.errors import UnsupportedRequestError
from sdv.api.server import SdvServer
from sdv.broker import HalBridge
from sdv.errors import ValueOutOfRangeError
from sdv.hal.processor import SignalUpdate, Status
from sdv.hal.profile import ServicesConfig
from sdv.hal.vehicle import VehicleDefinition
from sdv.sdk import ClusterState, Measurement, Validity, VehicleDynamics

from ..services.conftest import frames
from ..waiting import wait_until_async
from .conftest import ObservedPolicy

LIGHTING_REQUEST, CLIMATE_REQUEST = 0x300, 0x301


def test_the_models_have_every_field_of_the_messages() -> None:
    assert set(ClusterState.model_fields) == set(cockpit_pb2.ClusterState.DESCRIPTOR.fields_by_name)
    assert set(VehicleDynamics.model_fields) == set(adas_pb2.VehicleDynamics.DESCRIPTOR.fields_by_name)
    assert {validity.name for validity in Validity} == {
        name for name in adas_pb2.Validity.DESCRIPTOR.values_by_name if name != "VALIDITY_UNSPECIFIED"
    }


async def _full_state(vehicle: sdv.sdk.Vehicle) -> ClusterState:
    async def complete() -> ClusterState | None:
        state = await vehicle.cockpit.get()
        return state if all(getattr(state, name) is not None for name in ClusterState.model_fields) else None

    # Body and climate frames arrive every 100 and 200 ms: every field has a value shortly.
    return await wait_until_async(complete, what="a cluster state with every field")


async def test_cockpit_get_returns_typed_values(typed_server: SdvServer) -> None:
    async with sdv.connect(typed_server.target) as vehicle:
        state = await _full_state(vehicle)
    assert isinstance(state, ClusterState)
    assert isinstance(state.speed, float) and state.speed >= 0
    assert isinstance(state.gear, int) and not isinstance(state.gear, bool)
    assert state.gear in (-1, 0, 126, 127)
    assert isinstance(state.low_beam, bool)
    assert state.state_of_charge is not None and 0 <= state.state_of_charge <= 100
    # A 32-bit float comes back as its shortest decimal.
    assert len(repr(state.speed)) <= 12
    assert state.timestamp.tzinfo is UTC
    assert abs((datetime.now(UTC) - state.timestamp).total_seconds()) < 1


async def test_cockpit_stream_sends_typed_states_as_the_car_moves(typed_server: SdvServer) -> None:
    async with sdv.connect(typed_server.target) as vehicle:
        states = vehicle.cockpit.stream(max_rate_hz=20)
        received: list[ClusterState] = []
        async with contextlib.aclosing(states), asyncio.timeout(10):
            async for state in states:
                received.append(state)
                if len({item.speed for item in received}) >= 3:
                    break
    assert all(isinstance(state, ClusterState) for state in received)
    assert all(isinstance(state.speed, float) for state in received)
    assert all(isinstance(state.gear, int) for state in received if state.gear is not None)


async def test_set_low_beam_sends_the_frame(
    typed_server: SdvServer, can_observer: can.BusABC, demo_vehicle: VehicleDefinition
) -> None:
    async with sdv.connect(typed_server.target) as vehicle:
        for on in (True, False):
            await vehicle.cockpit.set_low_beam(on)
            # Sent before the call returned: already waiting on the bus.
            sent = [frame for frame in frames(can_observer) if frame.arbitration_id == LIGHTING_REQUEST]
            assert sent
            decoded = demo_vehicle.codec("vehicle", "LightingRequest").decode(sent[-1].data)
            assert decoded["LowBeamRequest"] == int(on)


async def test_set_cabin_temperature_sends_the_frame(
    typed_server: SdvServer, can_observer: can.BusABC, demo_vehicle: VehicleDefinition
) -> None:
    async with sdv.connect(typed_server.target) as vehicle:
        await vehicle.cockpit.set_cabin_temperature(21)
    sent = [frame for frame in frames(can_observer) if frame.arbitration_id == CLIMATE_REQUEST]
    assert sent
    decoded = demo_vehicle.codec("vehicle", "ClimateRequest").decode(sent[-1].data)
    assert decoded["CabinTemperatureRequest"] == pytest.approx(21)


async def test_an_out_of_range_temperature_is_a_value_out_of_range_error(
    typed_server: SdvServer, can_observer: can.BusABC
) -> None:
    async with sdv.connect(typed_server.target) as vehicle:
        with pytest.raises(ValueOutOfRangeError, match=r"Vehicle\.Cabin\.HVAC\.Station\.Row1\.Driver"):
            await vehicle.cockpit.set_cabin_temperature(35.0)
    assert [frame for frame in frames(can_observer) if frame.arbitration_id == CLIMATE_REQUEST] == []


async def test_adas_snapshot_is_valid_while_the_drive_replays(typed_server: SdvServer) -> None:
    async with sdv.connect(typed_server.target) as vehicle:
        dynamics = await vehicle.adas.snapshot()
    assert isinstance(dynamics, VehicleDynamics)
    speed = dynamics.speed
    assert isinstance(speed, Measurement)
    assert speed.validity is Validity.VALID and speed.valid
    assert isinstance(speed.value, float) and not math.isnan(speed.value)
    assert speed.timestamp is not None and speed.timestamp.tzinfo is UTC
    assert abs((datetime.now(UTC) - speed.timestamp).total_seconds()) < 2
    assert dynamics.longitudinal_acceleration.valid


async def test_adas_stream_sends_measurements(typed_server: SdvServer) -> None:
    async with sdv.connect(typed_server.target) as vehicle:
        updates = vehicle.adas.stream(max_rate_hz=50)
        received: list[VehicleDynamics] = []
        async with contextlib.aclosing(updates), asyncio.timeout(10):
            async for dynamics in updates:
                received.append(dynamics)
                if len(received) >= 5:
                    break
    assert all(isinstance(dynamics, VehicleDynamics) for dynamics in received)
    assert all(dynamics.speed.validity is Validity.VALID for dynamics in received[1:])
    assert len({dynamics.speed.timestamp for dynamics in received}) > 1


async def test_adas_stream_reports_stale_and_unavailable_values(bare_typed_server: SdvServer) -> None:
    broker = bare_typed_server.broker
    path = "Vehicle.Acceleration.Longitudinal"
    async with sdv.connect(bare_typed_server.target) as vehicle:
        updates = vehicle.adas.stream()
        async with contextlib.aclosing(updates), asyncio.timeout(10):
            first = await anext(updates)
            assert first.longitudinal_acceleration.validity is Validity.NOT_AVAILABLE
            assert math.isnan(first.longitudinal_acceleration.value)
            assert first.longitudinal_acceleration.timestamp is None
            broker.publish([SignalUpdate(path, -2.5, time.time(), Status.VALID)])
            valid = await anext(updates)
            assert valid.longitudinal_acceleration.valid
            assert valid.longitudinal_acceleration.value == -2.5
            broker.publish([SignalUpdate(path, -9.5, time.time(), Status.STALE)])
            stale = await anext(updates)
            assert stale.longitudinal_acceleration.validity is Validity.STALE
            assert not stale.longitudinal_acceleration.valid


async def test_a_server_without_service_mapping_is_a_clear_error(bare_server: SdvServer) -> None:
    async with sdv.connect(bare_server.target) as vehicle:
        with pytest.raises(UnsupportedRequestError, match=r"does not serve sdv\.cockpit\.v1\.Cockpit"):
            await vehicle.cockpit.get()
        with pytest.raises(UnsupportedRequestError, match=r"does not serve sdv\.adas\.v1\.Adas"):
            await vehicle.adas.snapshot()
        updates = vehicle.adas.stream()
        with pytest.raises(UnsupportedRequestError, match=r"does not serve sdv\.adas\.v1\.Adas"):
            async with contextlib.aclosing(updates):
                await anext(updates)
    assert issubclass(UnsupportedRequestError, sdv.SdvError)


async def test_a_command_without_a_mapped_actuator_names_the_field(bridge: HalBridge) -> None:
    services = ServicesConfig(cockpit={"speed": "Vehicle.Speed"})
    async with (
        SdvServer(bridge.broker, port=0, services=services) as server,
        sdv.connect(server.target) as vehicle,
    ):
        with pytest.raises(UnsupportedRequestError, match=r"services\.cockpit\.low_beam"):
            await vehicle.cockpit.set_low_beam(True)


async def test_services_are_unusable_outside_async_with() -> None:
    vehicle = sdv.connect("127.0.0.1:1")
    with pytest.raises(RuntimeError, match="not connected"):
        await vehicle.cockpit.get()


async def test_an_adas_stream_reconnects_to_a_restarted_server(demo_vehicle: VehicleDefinition) -> None:
    from sdv.broker import Broker

    path = "Vehicle.Acceleration.Longitudinal"
    services = demo_vehicle.config.services
    policy = ObservedPolicy(initial_delay=0.05, max_delay=0.2, jitter=0.1)
    first = SdvServer(Broker.from_vehicle(demo_vehicle), port=0, services=services)
    await first.start()
    port = first.port
    assert port
    first.broker.publish([SignalUpdate(path, -1.0, time.time(), Status.VALID)])
    restarted: SdvServer | None = None
    try:
        async with sdv.connect(f"127.0.0.1:{port}", reconnect=policy) as vehicle:
            updates = vehicle.adas.stream()
            async with contextlib.aclosing(updates), asyncio.timeout(60):
                assert (await anext(updates)).longitudinal_acceleration.value == -1.0
                await first.stop(grace=0)
                following = asyncio.ensure_future(anext(updates))  # the stream reconnects meanwhile
                await policy.several_failed.wait()  # attempts fail while nothing listens
                restarted = SdvServer(Broker.from_vehicle(demo_vehicle), port=port, services=services)
                await restarted.start()
                restarted.broker.publish([SignalUpdate(path, -2.0, time.time(), Status.VALID)])
                assert (await following).longitudinal_acceleration.value == -2.0
    finally:
        await first.stop(grace=0)
        if restarted is not None:
            await restarted.stop(grace=0)


async def test_an_adas_stream_gives_up_as_the_policy_says(demo_vehicle: VehicleDefinition) -> None:
    from sdv.broker import Broker

    policy = sdv.sdk.ReconnectPolicy(initial_delay=0.02, max_delay=0.05, max_attempts=3)
    server = SdvServer(Broker.from_vehicle(demo_vehicle), port=0, services=demo_vehicle.config.services)
    await server.start()
    try:
        async with sdv.connect(server.target, reconnect=policy) as vehicle:
            updates = vehicle.adas.stream()
            async with contextlib.aclosing(updates), asyncio.timeout(10):
                await anext(updates)
                await server.stop(grace=0)
                with pytest.raises(sdv.sdk.ServerUnreachableError, match="cannot reach"):
                    await anext(updates)
    finally:
        await server.stop(grace=0)
