"""kuksa.val.v2 over a real server: every RPC's success path and its error contract (docs/api.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import can
import grpc
import pytest

from sdv._proto.kuksa.val.v2 import types_pb2 as t
from sdv._proto.kuksa.val.v2 import val_pb2 as v
from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALStub
from sdv.api.server import SdvServer
from sdv.broker import Broker, Limits, metadata_from_vehicle
from sdv.broker.access import UNRESTRICTED
from sdv.hal.processor import SignalUpdate, Status
from sdv.hal.vehicle import VehicleDefinition

from .conftest import Stack

LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
HIGH_BEAM = "Vehicle.Body.Lights.Beam.High.IsOn"
CABIN_TEMPERATURE = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
BRAND = "Vehicle.VehicleIdentification.Brand"
CAPACITY = "Vehicle.Powertrain.TractionBattery.GrossCapacity"
Code = grpc.StatusCode


def by_path(path: str) -> t.SignalID:
    return t.SignalID(path=path)


def actuate(path: str, **value: Any) -> v.ActuateRequest:
    return v.ActuateRequest(signal_id=by_path(path), value=t.Value(**value))


def frames(bus: can.BusABC, timeout: float = 1.0) -> list[can.Message]:
    received = []
    while (frame := bus.recv(timeout)) is not None:
        received.append(frame)
        timeout = 0.2
    return received


async def test_server_info(v2: VALStub) -> None:
    info = await v2.GetServerInfo(v.GetServerInfoRequest())
    assert info.name == "sdv" and info.version


async def test_get_value_by_path_and_by_id(v2: VALStub, broker: Broker) -> None:
    brand = await v2.GetValue(v.GetValueRequest(signal_id=by_path(BRAND)))
    assert brand.data_point.value.string == "SDV Demo"
    by_id = await v2.GetValue(
        v.GetValueRequest(signal_id=t.SignalID(id=broker.metadata(BRAND, access=UNRESTRICTED).id))
    )
    assert by_id.data_point.value.string == "SDV Demo"


async def test_get_values_keeps_request_order(v2: VALStub) -> None:
    response = await v2.GetValues(v.GetValuesRequest(signal_ids=[by_path(CAPACITY), by_path(BRAND)]))
    assert [point.value.WhichOneof("typed_value") for point in response.data_points] == ["uint32", "string"]
    assert response.data_points[0].value.uint32 == 77


async def test_a_value_that_is_not_valid_is_served_without_value(v2: VALStub, broker: Broker) -> None:
    broker.publish([SignalUpdate(BRAND, "SDV Demo", 123.5, Status.STALE)])
    point = (await v2.GetValue(v.GetValueRequest(signal_id=by_path(BRAND)))).data_point
    assert not point.HasField("value")
    assert point.timestamp.seconds == 123 and point.timestamp.nanos == 500_000_000


async def test_list_metadata(v2: VALStub, demo_vehicle: VehicleDefinition) -> None:
    everything = (await v2.ListMetadata(v.ListMetadataRequest())).metadata
    assert [meta.path for meta in everything] == list(demo_vehicle.signals)
    speed = next(meta for meta in everything if meta.path == "Vehicle.Speed")
    assert speed.data_type == t.DATA_TYPE_FLOAT and speed.entry_type == t.ENTRY_TYPE_SENSOR
    assert speed.unit == "km/h" and speed.min.float == 0 and speed.max.float == 300
    cabin = (await v2.ListMetadata(v.ListMetadataRequest(root="Vehicle.Cabin"))).metadata
    assert cabin and all(meta.path.startswith("Vehicle.Cabin.") for meta in cabin)
    pattern = (await v2.ListMetadata(v.ListMetadataRequest(root="Vehicle.Body.Lights.Beam.*.IsOn"))).metadata
    assert {meta.path for meta in pattern} == {LOW_BEAM, HIGH_BEAM}


async def test_subscribe_receives_the_changing_values_of_the_demo_drive(v2: VALStub) -> None:
    paths = ["Vehicle.Speed", "Vehicle.Acceleration.Lateral"]
    seen: dict[str, set[float]] = {path: set() for path in paths}
    responses = 0
    call = v2.Subscribe(v.SubscribeRequest(signal_paths=paths))
    async with asyncio.timeout(10):
        async for response in call:
            if responses == 0:
                assert set(response.entries) == set(paths)  # first: every subscribed signal
            responses += 1
            for path, point in response.entries.items():
                seen[path].add(point.value.float)
            if max(len(values) for values in seen.values()) >= 5:
                break
    call.cancel()
    assert responses >= 2


async def test_subscribe_by_id_keys_entries_by_id(v2: VALStub, broker: Broker) -> None:
    brand_id = broker.metadata(
        BRAND, access=UNRESTRICTED
    ).id  # an attribute: its value is there from the start
    call = v2.SubscribeById(v.SubscribeByIdRequest(signal_ids=[brand_id]))
    async with asyncio.timeout(5):
        first = await call.read()
    call.cancel()
    assert list(first.entries) == [brand_id]
    assert first.entries[brand_id].value.string == "SDV Demo"


async def test_subscribe_ends_after_the_filter_duration(v2: VALStub) -> None:
    request = v.SubscribeRequest(signal_paths=["Vehicle.Speed"], filter=t.Filter(duration_ms=300))
    async with asyncio.timeout(5):
        responses = [response async for response in v2.Subscribe(request)]
    assert responses


async def test_actuate_sends_the_encoded_frame(
    v2: VALStub, can_observer: can.BusABC, demo_vehicle: VehicleDefinition
) -> None:
    await v2.Actuate(actuate(LOW_BEAM, bool=True))
    # The frame was sent before Actuate returned: it is already waiting on the bus.
    sent = [frame for frame in frames(can_observer, 0.5) if frame.arbitration_id == 0x300]
    assert sent
    decoded = demo_vehicle.codec("vehicle", "LightingRequest").decode(sent[-1].data)
    assert decoded["LowBeamRequest"] == 1


async def test_batch_actuate_sends_all_or_nothing(
    v2: VALStub, can_observer: can.BusABC, demo_vehicle: VehicleDefinition
) -> None:
    bad = v.BatchActuateRequest(
        actuate_requests=[actuate(HIGH_BEAM, bool=True), actuate(CABIN_TEMPERATURE, int32=35)]
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await v2.BatchActuate(bad)
    assert refused.value.code() == Code.INVALID_ARGUMENT
    assert "above the maximum 30" in (refused.value.details() or "")
    assert frames(can_observer, 0.3) == []
    good = v.BatchActuateRequest(
        actuate_requests=[actuate(HIGH_BEAM, bool=True), actuate(CABIN_TEMPERATURE, int32=21)]
    )
    await v2.BatchActuate(good)
    sent = {frame.arbitration_id for frame in frames(can_observer)}
    assert {0x300, 0x301} <= sent


async def test_actuate_stream(v2: VALStub, can_observer: can.BusABC) -> None:
    async def requests() -> Any:
        yield actuate(LOW_BEAM, bool=True)
        yield actuate(LOW_BEAM, bool=False)

    await v2.ActuateStream(requests())
    assert len([frame for frame in frames(can_observer) if frame.arbitration_id == 0x300]) == 2


async def test_publish_value(v2: VALStub, stack: Stack) -> None:
    stack.broker.release(stack.hal_signals)  # the profile's fixed attributes count as the HAL's
    request = v.PublishValueRequest(
        signal_id=by_path(CAPACITY), data_point=t.Datapoint(value=t.Value(uint32=80))
    )
    await v2.PublishValue(request)
    assert (await v2.GetValue(v.GetValueRequest(signal_id=by_path(CAPACITY)))).data_point.value.uint32 == 80
    await v2.PublishValue(v.PublishValueRequest(signal_id=by_path(CAPACITY), data_point=t.Datapoint()))
    point = (await v2.GetValue(v.GetValueRequest(signal_id=by_path(CAPACITY)))).data_point
    assert not point.HasField("value")  # published without value: not available


async def test_a_signal_the_hal_provides_cannot_be_published(v2: VALStub, broker: Broker) -> None:
    for data_point in (t.Datapoint(value=t.Value(float=10.0)), t.Datapoint()):
        request = v.PublishValueRequest(signal_id=by_path("Vehicle.Speed"), data_point=data_point)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await v2.PublishValue(request)
        assert error.value.code() == Code.ALREADY_EXISTS and "Vehicle.Speed" in (error.value.details() or "")
    assert broker.get("Vehicle.Speed", access=UNRESTRICTED).value != 10.0


# --- error contract ----------------------------------------------------------------------------------------
UNARY_ERRORS = [
    ("GetValue", v.GetValueRequest(signal_id=by_path("Vehicle.Speeed")), Code.NOT_FOUND, "did you mean"),
    ("GetValue", v.GetValueRequest(signal_id=t.SignalID(id=9999)), Code.NOT_FOUND, "9999"),
    ("GetValue", v.GetValueRequest(), Code.INVALID_ARGUMENT, "names no signal"),
    ("GetValues", v.GetValuesRequest(), Code.INVALID_ARGUMENT, "at least one"),
    ("GetValues", v.GetValuesRequest(signal_ids=[by_path(BRAND), by_path("X.Y")]), Code.NOT_FOUND, "X.Y"),
    ("ListMetadata", v.ListMetadataRequest(root="Vehicle.Nothing"), Code.NOT_FOUND, "Vehicle.Nothing"),
    ("Actuate", actuate("Vehicle.Body.Lights.Beam.Low.IsOnn", bool=True), Code.NOT_FOUND, "did you mean"),
    ("Actuate", actuate("Vehicle.Speed", float=10.0), Code.INVALID_ARGUMENT, "only actuators"),
    ("Actuate", actuate(LOW_BEAM, float=1.0), Code.INVALID_ARGUMENT, "expected a bool value, got float"),
    ("Actuate", actuate(CABIN_TEMPERATURE, int32=35), Code.INVALID_ARGUMENT, "above the maximum"),
    ("Actuate", v.ActuateRequest(signal_id=by_path(LOW_BEAM)), Code.INVALID_ARGUMENT, "no value"),
    ("BatchActuate", v.BatchActuateRequest(), Code.INVALID_ARGUMENT, "at least one"),
    (
        "PublishValue",
        v.PublishValueRequest(signal_id=by_path("X.Y"), data_point=t.Datapoint(value=t.Value(bool=True))),
        Code.NOT_FOUND,
        "X.Y",
    ),
    (
        "PublishValue",
        v.PublishValueRequest(signal_id=by_path(CAPACITY), data_point=t.Datapoint(value=t.Value(string="x"))),
        Code.INVALID_ARGUMENT,
        "expected a uint32 value",
    ),
    (
        "PublishValue",
        v.PublishValueRequest(
            signal_id=by_path("Vehicle.Speed"), data_point=t.Datapoint(value=t.Value(float=400.0))
        ),
        Code.INVALID_ARGUMENT,
        "above the maximum 300",
    ),
]


@pytest.mark.parametrize(
    ("rpc", "request_message", "code", "fragment"),
    UNARY_ERRORS,
    ids=[f"{row[0]}-{index}" for index, row in enumerate(UNARY_ERRORS)],
)
async def test_unary_error_contract(
    v2: VALStub, rpc: str, request_message: Any, code: grpc.StatusCode, fragment: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await getattr(v2, rpc)(request_message)
    assert error.value.code() == code
    assert fragment in (error.value.details() or "")


STREAM_ERRORS = [
    ("Subscribe", v.SubscribeRequest(signal_paths=["Vehicle.Nope"]), Code.NOT_FOUND),
    ("Subscribe", v.SubscribeRequest(), Code.INVALID_ARGUMENT),
    (
        "Subscribe",
        v.SubscribeRequest(signal_paths=["Vehicle.Speed"], buffer_size=5000),
        Code.INVALID_ARGUMENT,
    ),
    ("SubscribeById", v.SubscribeByIdRequest(signal_ids=[9999]), Code.NOT_FOUND),
]


@pytest.mark.parametrize(("rpc", "request_message", "code"), STREAM_ERRORS)
async def test_subscribe_error_contract(
    v2: VALStub, rpc: str, request_message: Any, code: grpc.StatusCode
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async with asyncio.timeout(5):
            async for _ in getattr(v2, rpc)(request_message):
                pass
    assert error.value.code() == code


async def test_actuator_without_provider_is_unavailable(v2: VALStub, stack: Stack) -> None:
    stack.broker.release(stack.hal_provider)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await v2.Actuate(actuate(LOW_BEAM, bool=True))
    assert error.value.code() == Code.UNAVAILABLE


async def test_subscription_limit_is_resource_exhausted(demo_vehicle: VehicleDefinition) -> None:
    broker = Broker(metadata_from_vehicle(demo_vehicle), Limits(max_subscriptions=1))
    async with SdvServer(broker, port=0) as server, grpc.aio.insecure_channel(server.target) as channel:
        stub = VALStub(channel)
        first = stub.Subscribe(v.SubscribeRequest(signal_paths=[BRAND]))
        await first.read()
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.Subscribe(v.SubscribeRequest(signal_paths=[BRAND])).read()
        assert error.value.code() == Code.RESOURCE_EXHAUSTED
        first.cancel()
