"""``sdv.connect`` against a real server: typed values, subscriptions, actuation and the error tree."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from datetime import UTC, datetime

import can
import pytest

import sdv
from sdv.api.server import SdvServer
from sdv.broker.access import UNRESTRICTED
from sdv.errors import ReadOnlyError, SdvError, UnknownSignalError, ValueOutOfRangeError
from sdv.sdk import ReconnectPolicy, ServerUnreachableError, SignalValue, Value
from sdv.types.status import Status

from ..client.conftest import received_frames
from ..client.serving import ServerThread
from .conftest import ObservedPolicy

SPEED = "Vehicle.Speed"
YAW = "Vehicle.AngularVelocity.Yaw"
GEAR = "Vehicle.Powertrain.Transmission.SelectedGear"
BRAND = "Vehicle.VehicleIdentification.Brand"
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
CABIN_TEMPERATURE = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
LIGHTING_REQUEST = 0x300


def test_import_sdv_stays_light() -> None:
    import subprocess

    code = "import sys, sdv; print('grpc' in sys.modules, 'sdv.sdk' in sys.modules, callable(sdv.connect))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False", "True"]


async def test_get_returns_a_typed_signal_value(server: ServerThread) -> None:
    async with sdv.connect(server.target) as vehicle:
        speed = await vehicle.get(SPEED)
        gear, brand = (await vehicle.get_many([GEAR, BRAND])).values()
    assert isinstance(speed, SignalValue)
    assert (speed.path, speed.unit, speed.datatype, speed.status) == (SPEED, "km/h", "float", Status.VALID)
    assert type(speed.value) is float and speed.valid
    assert speed.timestamp is not None and speed.timestamp.tzinfo is UTC
    assert abs((datetime.now(UTC) - speed.timestamp).total_seconds()) < 60
    assert type(gear.value) is int and gear.datatype == "int8"
    assert (brand.value, brand.unit) == ("SDV Demo", None)


async def test_a_signal_without_value(bare_server: SdvServer) -> None:
    async with sdv.connect(bare_server.target) as vehicle:
        speed = await vehicle.get(SPEED)
    assert (speed.value, speed.status, speed.valid) == (None, Status.NOT_AVAILABLE, False)


async def test_subscribe_yields_changing_values(server: ServerThread) -> None:
    seen: list[SignalValue[Value]] = []
    async with sdv.connect(server.target) as vehicle:
        updates = vehicle.subscribe([YAW, BRAND])
        async with contextlib.aclosing(updates), asyncio.timeout(10):
            first = await anext(updates)
            async for batch in updates:
                seen.extend(value for path, value in batch.items() if path == YAW)
                if len({value.value for value in seen}) >= 3:
                    break
    assert set(first) == {YAW, BRAND} and first[BRAND].value == "SDV Demo"
    assert all(value.unit == "degrees/s" and type(value.value) is float for value in seen)
    assert [value.timestamp for value in seen] == sorted(value.timestamp for value in seen)


async def test_actuate_sends_the_frame(server: ServerThread, can_observer: can.BusABC) -> None:
    async with sdv.connect(server.target) as vehicle:
        await vehicle.actuate(LOW_BEAM, True)
    sent = [frame for frame in received_frames(can_observer, 0.5) if frame.arbitration_id == LIGHTING_REQUEST]
    assert len(sent) == 1


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda vehicle: vehicle.get("Vehicle.Sped"), UnknownSignalError, "did you mean Vehicle.Speed"),
        (lambda vehicle: vehicle.actuate("Vehicle.Nope", True), UnknownSignalError, r"Vehicle\.Nope"),
        (lambda vehicle: vehicle.actuate(SPEED, 10.0), ReadOnlyError, "is a sensor"),
        (
            lambda vehicle: vehicle.actuate(CABIN_TEMPERATURE, 35.0),
            ValueOutOfRangeError,
            "above the maximum 30",
        ),
        (lambda vehicle: vehicle.actuate(LOW_BEAM, "maybe"), ValueOutOfRangeError, "expected a boolean"),
    ],
)
async def test_refusals_are_the_projects_errors(
    server: ServerThread, call: object, error: type[SdvError], message: str
) -> None:
    async with sdv.connect(server.target) as vehicle:
        with pytest.raises(error, match=message):
            await call(vehicle)  # type: ignore[operator]


async def test_subscribing_to_an_unknown_signal(server: ServerThread) -> None:
    async with sdv.connect(server.target) as vehicle:
        updates = vehicle.subscribe([SPEED, "Vehicle.Nope"])
        async with contextlib.aclosing(updates):
            with pytest.raises(UnknownSignalError, match=r"Vehicle\.Nope"):
                await anext(updates)


async def test_an_unreachable_server_is_named(closed_port: int) -> None:
    target = f"127.0.0.1:{closed_port}"
    with pytest.raises(ServerUnreachableError, match=f"cannot reach {target}") as caught:
        async with sdv.connect(target):
            pass
    assert isinstance(caught.value, SdvError) and isinstance(caught.value, ConnectionError)


async def test_not_connected_is_a_usage_error() -> None:
    vehicle = sdv.connect("127.0.0.1:1")
    with pytest.raises(RuntimeError, match="async with"):
        await vehicle.get(SPEED)


async def test_subscription_reconnects_to_a_restarted_server(
    demo_vehicle: sdv.hal.vehicle.VehicleDefinition,
) -> None:
    from sdv.broker import Broker

    policy = ObservedPolicy(initial_delay=0.05, max_delay=0.2, jitter=0.1)
    first = SdvServer(Broker.from_vehicle(demo_vehicle), port=0)
    await first.start()
    port = first.port
    assert port
    first.broker.publish_value(SPEED, 10.0, access=UNRESTRICTED)
    restarted: SdvServer | None = None
    try:
        async with sdv.connect(f"127.0.0.1:{port}", reconnect=policy) as vehicle:
            updates = vehicle.subscribe([SPEED])
            async with contextlib.aclosing(updates), asyncio.timeout(60):
                assert (await anext(updates))[SPEED].value == 10.0
                await first.stop(grace=0)
                following = asyncio.ensure_future(anext(updates))  # the subscription reconnects meanwhile
                await policy.several_failed.wait()  # attempts fail while nothing listens
                restarted = SdvServer(Broker.from_vehicle(demo_vehicle), port=port)
                await restarted.start()
                restarted.broker.publish_value(SPEED, 20.0, access=UNRESTRICTED)
                started = time.monotonic()
                assert (await following)[SPEED].value == 20.0  # the new server's current value
                assert time.monotonic() - started < 2  # waits are capped at max_delay (0.2 s)
                restarted.broker.publish_value(SPEED, 30.0, access=UNRESTRICTED)
                assert (await anext(updates))[SPEED].value == 30.0
    finally:
        await first.stop(grace=0)
        if restarted is not None:
            await restarted.stop(grace=0)


async def test_a_subscription_gives_up_as_its_policy_says(
    demo_vehicle: sdv.hal.vehicle.VehicleDefinition,
) -> None:
    from sdv.broker import Broker

    policy = ReconnectPolicy(initial_delay=0.02, max_delay=0.05, max_attempts=3)
    server = SdvServer(Broker.from_vehicle(demo_vehicle), port=0)
    await server.start()
    try:
        async with sdv.connect(server.target, reconnect=policy) as vehicle:
            updates = vehicle.subscribe([SPEED])
            async with contextlib.aclosing(updates), asyncio.timeout(10):
                await anext(updates)
                await server.stop(grace=0)
                with pytest.raises(ServerUnreachableError, match="cannot reach"):
                    await anext(updates)
    finally:
        await server.stop(grace=0)


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(0, 0.4, 0.6), (1, 0.8, 1.2), (3, 3.2, 4.8), (10, 24.0, 30.0), (10_000, 24.0, 30.0)],
)
def test_backoff_grows_and_is_capped(attempt: int, low: float, high: float) -> None:
    policy = ReconnectPolicy(initial_delay=0.5, max_delay=30.0, jitter=0.2)
    delays = [policy.delay(attempt) for _ in range(200)]
    assert all(low <= delay <= high for delay in delays)


def test_a_policy_with_delays_out_of_order_is_refused() -> None:
    with pytest.raises(ValueError, match="initial_delay 5 is above max_delay 1"):
        ReconnectPolicy(initial_delay=5, max_delay=1)


def test_the_sync_facade(server: ServerThread, can_observer: can.BusABC) -> None:
    import threading

    with sdv.connect_sync(server.target) as vehicle:
        speed = vehicle.get(SPEED)
        vehicle.actuate(LOW_BEAM, False)
        updates = vehicle.subscribe([YAW])
        batches = [next(updates) for _ in range(3)]
        updates.close()
        with pytest.raises(ReadOnlyError):
            vehicle.actuate(SPEED, 1.0)
    assert speed.unit == "km/h" and type(speed.value) is float
    assert all(type(batch[YAW].value) is float for batch in batches)
    assert any(frame.arbitration_id == LIGHTING_REQUEST for frame in received_frames(can_observer, 0.5))
    assert not [thread for thread in threading.enumerate() if thread.name == "sdv-sdk-loop"]


def test_the_sync_facade_names_an_unreachable_server(closed_port: int) -> None:
    import threading

    with pytest.raises(ServerUnreachableError), sdv.connect_sync(f"127.0.0.1:{closed_port}"):
        pass
    assert not [thread for thread in threading.enumerate() if thread.name == "sdv-sdk-loop"]
