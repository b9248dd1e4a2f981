"""``VehicleClient`` against a real server: values, metadata, subscriptions, actuation, and every error path."""

from __future__ import annotations

import asyncio
import contextlib
import time

import can
import pytest

from sdv.api.server import SdvServer
from sdv.broker.access import UNRESTRICTED
from sdv.client import ServerUnreachableError, VehicleClient
from sdv.errors import (
    NoProviderError,
    ReadOnlyError,
    SdvError,
    UnknownSignalError,
    ValueOutOfRangeError,
)
from sdv.hal.vehicle import VehicleDefinition
from sdv.types.status import Status

from ..waiting import DEADLINE_S
from .conftest import received_frames
from .serving import ServerThread

SPEED = "Vehicle.Speed"
YAW = "Vehicle.AngularVelocity.Yaw"  # changes from the first second of the demo drive
BRAND = "Vehicle.VehicleIdentification.Brand"
CAPACITY = "Vehicle.Powertrain.TractionBattery.GrossCapacity"
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
CABIN_TEMPERATURE = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
FRAMES = "Sdv.Hal.Bus.vehicle.Frames"
LIGHTING_REQUEST = 0x300


async def test_get_returns_typed_datapoints_in_request_order(server: ServerThread) -> None:
    async with VehicleClient(server.target) as client:
        values = await client.get([CAPACITY, BRAND, SPEED])
    assert list(values) == [CAPACITY, BRAND, SPEED]
    assert values[BRAND].value == "SDV Demo" and values[BRAND].status is Status.VALID
    assert values[CAPACITY].value == 77 and type(values[CAPACITY].value) is int
    speed = values[SPEED]
    assert isinstance(speed.value, float) and 0 <= speed.value <= 300
    assert speed.timestamp is not None and abs(time.time() - speed.timestamp) < 60


async def test_a_signal_without_value_is_not_available(bare_server: SdvServer) -> None:
    async with VehicleClient(bare_server.target) as client:
        speed = (await client.get([SPEED]))[SPEED]
    assert speed.value is None and speed.status is Status.NOT_AVAILABLE


async def test_unknown_paths_raise_the_servers_message(server: ServerThread) -> None:
    async with VehicleClient(server.target) as client:
        with pytest.raises(
            UnknownSignalError, match=r"unknown signal 'Vehicle\.Sped'; did you mean Vehicle\.Speed"
        ):
            await client.get([SPEED, "Vehicle.Sped"])
        with pytest.raises(UnknownSignalError, match=r"Vehicle\.Nothing"):
            await client.list_metadata("Vehicle.Nothing")
        with pytest.raises(ValueOutOfRangeError):
            await client.get([])


async def test_metadata_of_a_signal_a_branch_and_the_hal_counters(
    server: ServerThread, demo_vehicle: VehicleDefinition
) -> None:
    async with VehicleClient(server.target) as client:
        speed = await client.metadata(SPEED)
        everything = await client.list_metadata()
        counters = await client.list_metadata("Sdv.Hal")
        with pytest.raises(UnknownSignalError, match="branch"):
            await client.metadata("Vehicle.Body")
    assert (speed.kind, speed.datatype, speed.unit, speed.min, speed.max) == (
        "sensor",
        "float",
        "km/h",
        0,
        300,
    )
    assert speed == server.broker.metadata(
        SPEED, access=UNRESTRICTED
    )  # the same description as in the server's process
    assert [meta.path for meta in everything][: len(demo_vehicle.signals)] == list(demo_vehicle.signals)
    assert FRAMES in {meta.path for meta in counters}
    kinds = {meta.path.rsplit(".", 1)[-1]: (meta.kind, meta.datatype) for meta in counters}
    assert kinds["Frames"] == kinds["Reconnects"] == ("sensor", "uint64")
    assert kinds["State"] == kinds["LastError"] == ("sensor", "string")
    assert kinds["NextRetry"] == ("sensor", "double")
    state = next(meta for meta in counters if meta.path == "Sdv.Hal.Bus.vehicle.State")
    assert state.allowed == ("CONNECTING", "UP", "DOWN", "ENDED")


async def test_subscribe_sends_every_signal_then_the_changes(server: ServerThread) -> None:
    batches = []
    async with VehicleClient(server.target) as client:
        updates = client.subscribe([YAW, BRAND])
        async with contextlib.aclosing(updates):
            async with asyncio.timeout(10):
                async for batch in updates:
                    batches.append(batch)
                    if len({batch[YAW].value for batch in batches if YAW in batch}) >= 4:
                        break
    assert set(batches[0]) == {YAW, BRAND}
    assert all(BRAND not in batch for batch in batches[1:])  # an attribute does not change
    assert all(batch[YAW].status is Status.VALID for batch in batches)
    stamps = [batch[YAW].timestamp for batch in batches]
    assert stamps == sorted(stamps)


async def test_closing_a_subscription_releases_it_on_the_server(server: ServerThread) -> None:
    async def subscriptions_become(count: int) -> int:
        deadline = time.monotonic() + DEADLINE_S
        while server.broker.subscription_count != count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return server.broker.subscription_count

    own = 0  # the server's own (its health reporter) are not counted
    # Earlier tests' subscriptions end asynchronously on the server.
    assert await subscriptions_become(own) == own
    async with VehicleClient(server.target) as client:
        updates = client.subscribe([YAW])
        async with contextlib.aclosing(updates):
            await anext(updates)
            assert server.broker.subscription_count == own + 1
    assert await subscriptions_become(own) == own


async def test_subscribe_to_an_unknown_signal_fails_on_the_first_batch(server: ServerThread) -> None:
    async with VehicleClient(server.target) as client:
        updates = client.subscribe([SPEED, "Vehicle.Nope"])
        async with contextlib.aclosing(updates):
            with pytest.raises(UnknownSignalError, match=r"Vehicle\.Nope"):
                await anext(updates)


async def test_actuate_returns_after_the_frame_was_sent(
    server: ServerThread, can_observer: can.BusABC, demo_vehicle: VehicleDefinition
) -> None:
    codec = demo_vehicle.codec("vehicle", "LightingRequest")
    async with VehicleClient(server.target) as client:
        await client.actuate(LOW_BEAM, True)
        first = [
            frame for frame in received_frames(can_observer, 0.5) if frame.arbitration_id == LIGHTING_REQUEST
        ]
        await client.actuate(LOW_BEAM, 0)  # converted by the datatype: 0 is False for a boolean
        second = [
            frame for frame in received_frames(can_observer, 0.5) if frame.arbitration_id == LIGHTING_REQUEST
        ]
    assert len(first) == 1 and codec.decode(first[0].data)["LowBeamRequest"] == 1
    assert len(second) == 1 and codec.decode(second[0].data)["LowBeamRequest"] == 0


@pytest.mark.parametrize(
    ("path", "value", "error", "message"),
    [
        (SPEED, 50.0, ReadOnlyError, r"Vehicle\.Speed is a sensor"),
        (BRAND, "x", ReadOnlyError, "is an attribute"),
        (LOW_BEAM, "maybe", ValueOutOfRangeError, "expected a boolean"),
        (LOW_BEAM, 2, ValueOutOfRangeError, "expected a boolean"),
        (CABIN_TEMPERATURE, 35.0, ValueOutOfRangeError, "above the maximum 30"),
        (CABIN_TEMPERATURE, 10, ValueOutOfRangeError, "below the minimum 16"),
        ("Vehicle.Nope", True, UnknownSignalError, r"Vehicle\.Nope"),
    ],
)
async def test_refused_actuations_send_nothing(
    server: ServerThread,
    can_observer: can.BusABC,
    path: str,
    value: object,
    error: type[SdvError],
    message: str,
) -> None:
    async with VehicleClient(server.target) as client:
        with pytest.raises(error, match=message):
            await client.actuate(path, value)
    requests = [
        frame for frame in received_frames(can_observer, 0.3) if frame.arbitration_id in (0x300, 0x301)
    ]
    assert requests == []


async def test_an_actuator_without_provider_is_no_provider(bare_server: SdvServer) -> None:
    async with VehicleClient(bare_server.target) as client:
        with pytest.raises(NoProviderError, match="no provider"):
            await client.actuate(LOW_BEAM, True)


async def test_an_unreachable_server_is_named(closed_port: int) -> None:
    target = f"127.0.0.1:{closed_port}"
    with pytest.raises(ServerUnreachableError, match=rf"^cannot reach 127\.0\.0\.1:{closed_port}: "):
        async with VehicleClient(target, timeout=2):
            pass


async def test_a_server_going_away_ends_a_subscription_with_an_error(bare_server: SdvServer) -> None:
    async with VehicleClient(bare_server.target) as client:
        updates = client.subscribe([SPEED])
        async with contextlib.aclosing(updates):
            await anext(updates)
            await bare_server.stop(grace=0)
            with pytest.raises(SdvError):
                async with asyncio.timeout(5):
                    await anext(updates)


async def test_the_client_is_used_inside_async_with() -> None:
    client = VehicleClient()
    with pytest.raises(RuntimeError, match="async with"):
        await client.get([SPEED])
