"""kuksa.val.v1 over a real server: GetServerInfo, Get (views and fields), Set, Subscribe; health; reflection."""

from __future__ import annotations

import asyncio

import can
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sdv._proto.kuksa.val.v1 import types_pb2 as t
from sdv._proto.kuksa.val.v1 import val_pb2 as v
from sdv._proto.kuksa.val.v1.val_pb2_grpc import VALStub
from sdv._proto.kuksa.val.v2 import types_pb2 as t2
from sdv._proto.kuksa.val.v2 import val_pb2 as v2_messages
from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALStub as V2Stub
from sdv.hal.vehicle import VehicleDefinition

from ..waiting import wait_until_async

LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
CABIN_TEMPERATURE = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"


def get(path: str, view: int, *fields: int) -> v.GetRequest:
    return v.GetRequest(entries=[v.EntryRequest(path=path, view=view, fields=fields)])


def set_target(path: str, datapoint: t.Datapoint) -> v.SetRequest:
    entry = t.DataEntry(path=path, actuator_target=datapoint)
    return v.SetRequest(updates=[v.EntryUpdate(entry=entry, fields=[t.FIELD_ACTUATOR_TARGET])])


async def test_server_info(v1: VALStub) -> None:
    assert (await v1.GetServerInfo(v.GetServerInfoRequest())).name == "sdv"


async def test_get_current_value_and_metadata(v1: VALStub) -> None:
    async def current() -> t.DataEntry | None:
        entry = (await v1.Get(get("Vehicle.Speed", t.VIEW_CURRENT_VALUE, t.FIELD_VALUE))).entries[0]
        return entry if entry.value.WhichOneof("value") else None

    entry = await wait_until_async(current, what="the replay to deliver Vehicle.Speed")
    assert entry.path == "Vehicle.Speed" and entry.value.WhichOneof("value") == "float"
    assert not entry.HasField("metadata")
    metadata = (await v1.Get(get("Vehicle.Speed", t.VIEW_METADATA, t.FIELD_METADATA))).entries[0].metadata
    assert metadata.data_type == t.DATA_TYPE_FLOAT and metadata.unit == "km/h"
    assert metadata.entry_type == t.ENTRY_TYPE_SENSOR and metadata.HasField("sensor")
    assert metadata.value_restriction.floating_point.max == 300
    unit_only = (await v1.Get(get("Vehicle.Speed", t.VIEW_FIELDS, t.FIELD_METADATA_UNIT))).entries[0]
    assert unit_only.metadata.unit == "km/h" and not unit_only.metadata.HasField("description")


async def test_get_a_branch_and_everything(v1: VALStub) -> None:
    entries = (await v1.Get(get("Vehicle.Body.Lights", t.VIEW_ALL))).entries
    assert {entry.path for entry in entries} >= {LOW_BEAM}
    low = next(entry for entry in entries if entry.path == LOW_BEAM)
    assert low.HasField("metadata") and low.metadata.entry_type == t.ENTRY_TYPE_ACTUATOR


async def test_set_target_actuates_and_get_target_shows_it(v1: VALStub, can_observer: can.BusABC) -> None:
    response = await v1.Set(set_target(LOW_BEAM, t.Datapoint(bool=True)))
    assert not response.errors and not response.HasField("error")
    assert can_observer.recv(1.0) is not None  # the frame was sent before Set returned
    (entry,) = (await v1.Get(get(LOW_BEAM, t.VIEW_TARGET_VALUE, t.FIELD_ACTUATOR_TARGET))).entries
    assert entry.actuator_target.bool is True


@pytest.mark.parametrize(
    ("request_message", "code"),
    [
        (get("Vehicle.Nothing", t.VIEW_CURRENT_VALUE), 404),
        (set_target("Vehicle.Nothing", t.Datapoint(bool=True)), 404),
        (set_target(LOW_BEAM, t.Datapoint(float=1.0)), 400),
        (set_target(CABIN_TEMPERATURE, t.Datapoint(int32=35)), 400),
        (
            v.SetRequest(
                updates=[
                    v.EntryUpdate(
                        entry=t.DataEntry(path="Vehicle.Speed", value=t.Datapoint(float=3.0)),
                        fields=[t.FIELD_VALUE],
                    )
                ]
            ),
            409,
        ),
    ],
    ids=["get-unknown", "set-unknown", "set-wrong-type", "set-out-of-range", "set-value-the-hal-provides"],
)
async def test_per_entry_errors(
    v1: VALStub, can_observer: can.BusABC, request_message: v.GetRequest | v.SetRequest, code: int
) -> None:
    rpc = v1.Get if isinstance(request_message, v.GetRequest) else v1.Set
    response = await rpc(request_message)  # type: ignore[operator]
    assert [error.error.code for error in response.errors] == [code]
    assert response.error.code == code
    assert can_observer.recv(0.3) is None  # nothing was sent


@pytest.mark.parametrize(
    ("rpc", "request_message", "code"),
    [
        ("Get", v.GetRequest(), grpc.StatusCode.INVALID_ARGUMENT),
        ("Set", set_target("Vehicle.Speed", t.Datapoint(float=3.0)), grpc.StatusCode.INVALID_ARGUMENT),
        ("Set", v.SetRequest(updates=[v.EntryUpdate()]), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
async def test_call_errors(v1: VALStub, rpc: str, request_message: object, code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await getattr(v1, rpc)(request_message)
    assert error.value.code() == code


async def test_subscribe_streams_value_updates(v1: VALStub) -> None:
    request = v.SubscribeRequest(
        entries=[
            v.SubscribeEntry(
                path="Vehicle.Acceleration.Lateral", view=t.VIEW_CURRENT_VALUE, fields=[t.FIELD_VALUE]
            )
        ]
    )
    call = v1.Subscribe(request)
    values = set()
    async with asyncio.timeout(10):
        async for response in call:
            for update in response.updates:
                assert update.entry.path == "Vehicle.Acceleration.Lateral"
                values.add(update.entry.value.float)
            if len(values) >= 3:
                break
    call.cancel()


async def test_subscribe_to_a_target_receives_the_new_target_after_an_actuation(
    v1: VALStub, v2: V2Stub, can_observer: can.BusABC
) -> None:
    request = v.SubscribeRequest(
        entries=[v.SubscribeEntry(path=LOW_BEAM, view=t.VIEW_FIELDS, fields=[t.FIELD_ACTUATOR_TARGET])]
    )
    call = v1.Subscribe(request)
    async with asyncio.timeout(10):
        (first,) = (await call.read()).updates
        assert first.entry.path == LOW_BEAM and list(first.fields) == [t.FIELD_ACTUATOR_TARGET]
        assert not first.entry.actuator_target.WhichOneof("value")  # nothing requested yet
        actuate = v2_messages.ActuateRequest(signal_id=t2.SignalID(path=LOW_BEAM), value=t2.Value(bool=True))
        await v2.Actuate(actuate)
        (update,) = (await call.read()).updates
    assert update.entry.path == LOW_BEAM and list(update.fields) == [t.FIELD_ACTUATOR_TARGET]
    assert update.entry.actuator_target.bool is True and not update.entry.HasField("value")
    call.cancel()


async def test_subscribe_to_value_and_target_merges_both_streams(
    v1: VALStub, can_observer: can.BusABC
) -> None:
    request = v.SubscribeRequest(
        entries=[
            v.SubscribeEntry(
                path=LOW_BEAM, view=t.VIEW_FIELDS, fields=[t.FIELD_VALUE, t.FIELD_ACTUATOR_TARGET]
            ),
            v.SubscribeEntry(path="Vehicle.Acceleration.Lateral", view=t.VIEW_CURRENT_VALUE),
        ]
    )
    call = v1.Subscribe(request)
    async with asyncio.timeout(10):
        first = (await call.read()).updates
        assert {update.entry.path for update in first} == {LOW_BEAM, "Vehicle.Acceleration.Lateral"}
        await v1.Set(set_target(LOW_BEAM, t.Datapoint(bool=True)))
        targets, values = [], []
        while not targets or "Vehicle.Acceleration.Lateral" not in values:
            for update in (await call.read()).updates:
                if list(update.fields) == [t.FIELD_ACTUATOR_TARGET]:
                    targets.append((update.entry.path, update.entry.actuator_target.bool))
                else:
                    assert list(update.fields) == [t.FIELD_VALUE]
                    values.append(update.entry.path)
    assert targets == [(LOW_BEAM, True)]  # while the steering angle kept coming with the demo drive
    call.cancel()


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        (v.SubscribeEntry(path="Vehicle.Nothing", view=t.VIEW_CURRENT_VALUE), grpc.StatusCode.NOT_FOUND),
        (
            v.SubscribeEntry(path="Vehicle.Speed", view=t.VIEW_TARGET_VALUE),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
    ],
)
async def test_subscribe_errors(v1: VALStub, entry: v.SubscribeEntry, code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async with asyncio.timeout(5):
            async for _ in v1.Subscribe(v.SubscribeRequest(entries=[entry])):
                pass
    assert error.value.code() == code


async def test_health_is_serving(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "kuksa.val.v2.VAL", "kuksa.val.v1.VAL"):
        response = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_both_services(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def ask() -> object:
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for response in stub.ServerReflectionInfo(ask()):
        names = {service.name for service in response.list_services_response.service}
        assert {"kuksa.val.v2.VAL", "kuksa.val.v1.VAL"} <= names
        break


def test_fixture_vehicle_has_the_actuators_the_tests_use(demo_vehicle: VehicleDefinition) -> None:
    assert demo_vehicle.signals[LOW_BEAM].kind == "actuator"
    assert demo_vehicle.signals[CABIN_TEMPERATURE].max == 30


async def test_subscribe_to_everything_of_a_sensor_has_no_target(v1: VALStub) -> None:
    call = v1.Subscribe(v.SubscribeRequest(entries=[v.SubscribeEntry(path="Vehicle.Speed", view=t.VIEW_ALL)]))
    async with asyncio.timeout(5):
        (first,) = (await call.read()).updates
    assert first.entry.path == "Vehicle.Speed" and first.entry.HasField("metadata")
    assert not first.entry.HasField("actuator_target")
    call.cancel()
