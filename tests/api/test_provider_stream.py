"""OpenProviderStream: claiming actuators, answering forwarded actuations, publishing values."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from sdv._proto.kuksa.val.v2 import types_pb2 as t
from sdv._proto.kuksa.val.v2 import val_pb2 as v
from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALStub
from sdv.broker.access import UNRESTRICTED

from ..waiting import wait_until_async
from .conftest import Stack

LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
CAPACITY = "Vehicle.Powertrain.TractionBattery.GrossCapacity"


class Provider:
    """The provider side of one stream: messages to send, responses received."""

    def __init__(self, stub: VALStub) -> None:
        self.outbox: asyncio.Queue[v.OpenProviderStreamRequest | None] = asyncio.Queue()
        self.call = stub.OpenProviderStream(self._requests())

    async def _requests(self) -> Any:
        while (request := await self.outbox.get()) is not None:
            yield request

    async def send(self, **action: Any) -> None:
        await self.outbox.put(v.OpenProviderStreamRequest(**action))

    async def read(self) -> v.OpenProviderStreamResponse:
        async with asyncio.timeout(5):
            response = await self.call.read()
        assert isinstance(response, v.OpenProviderStreamResponse)
        return response


def claim(path: str) -> dict[str, Any]:
    request = v.ProvideActuationRequest(actuator_identifiers=[t.SignalID(path=path)])
    return {"provide_actuation_request": request}


async def test_claimed_actuator_gets_the_request_and_actuate_waits_for_the_answer(
    v2: VALStub, stack: Stack
) -> None:
    stack.broker.release(stack.hal_provider)
    provider = Provider(v2)
    await provider.send(**claim(LOW_BEAM))
    assert (await provider.read()).HasField("provide_actuation_response")

    actuation = asyncio.ensure_future(
        v2.Actuate(v.ActuateRequest(signal_id=t.SignalID(path=LOW_BEAM), value=t.Value(bool=True)))
    )
    forwarded = (await provider.read()).batch_actuate_stream_request.actuate_requests
    assert [(item.signal_id.id, item.value.bool) for item in forwarded] == [
        (stack.broker.metadata(LOW_BEAM, access=UNRESTRICTED).id, True)
    ]
    await asyncio.sleep(0.1)
    assert not actuation.done()  # not before the provider answered
    answer = v.BatchActuateStreamResponse(signal_id=forwarded[0].signal_id)
    await provider.send(batch_actuate_stream_response=answer)
    await asyncio.wait_for(actuation, 5)

    # A refusal by the provider fails the actuation with DATA_LOSS.
    actuation = asyncio.ensure_future(
        v2.Actuate(v.ActuateRequest(signal_id=t.SignalID(path=LOW_BEAM), value=t.Value(bool=False)))
    )
    forwarded = (await provider.read()).batch_actuate_stream_request.actuate_requests
    refusal = t.Error(code=t.ERROR_CODE_INVALID_ARGUMENT, message="lamp broken")
    await provider.send(
        batch_actuate_stream_response=v.BatchActuateStreamResponse(
            signal_id=forwarded[0].signal_id, error=refusal
        )
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await asyncio.wait_for(actuation, 5)
    assert error.value.code() == grpc.StatusCode.DATA_LOSS and "lamp broken" in (error.value.details() or "")

    # A provider of actuators that half-closes (as kuksa-client does) still receives actuations.
    await provider.outbox.put(None)
    actuation = asyncio.ensure_future(
        v2.Actuate(v.ActuateRequest(signal_id=t.SignalID(path=LOW_BEAM), value=t.Value(bool=True)))
    )
    assert (await provider.read()).batch_actuate_stream_request.actuate_requests[0].value.bool is True
    actuation.cancel()

    # When the call ends the claim is released: no provider any more.
    provider.call.cancel()

    async def released() -> bool:  # the server notices the cancelled call on this loop
        return stack.broker.owner_of(LOW_BEAM) is stack.hal_signals  # the HAL still feeds its value

    await wait_until_async(released, what="the server to release the provider's claim")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await v2.Actuate(v.ActuateRequest(signal_id=t.SignalID(path=LOW_BEAM), value=t.Value(bool=True)))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_claiming_an_owned_actuator_ends_the_stream_with_already_exists(v2: VALStub) -> None:
    provider = Provider(v2)
    await provider.send(**claim(LOW_BEAM))  # the HAL owns it
    async with asyncio.timeout(5):
        assert await provider.call.code() == grpc.StatusCode.ALREADY_EXISTS
    await provider.outbox.put(None)


@pytest.mark.parametrize(
    ("path", "code"),
    [("Vehicle.Nope", grpc.StatusCode.NOT_FOUND), ("Vehicle.Speed", grpc.StatusCode.INVALID_ARGUMENT)],
)
async def test_claiming_an_unknown_signal_or_a_sensor_fails(
    v2: VALStub, path: str, code: grpc.StatusCode
) -> None:
    provider = Provider(v2)
    await provider.send(**claim(path))
    async with asyncio.timeout(5):
        assert await provider.call.code() == code
    await provider.outbox.put(None)


async def test_published_values_apply_and_only_refused_ones_are_answered(v2: VALStub, stack: Stack) -> None:
    stack.broker.release(stack.hal_signals)  # the profile's fixed attributes count as the HAL's
    provider = Provider(v2)
    capacity_id = stack.broker.metadata(CAPACITY, access=UNRESTRICTED).id
    points = {capacity_id: t.Datapoint(value=t.Value(uint32=81)), 9999: t.Datapoint(value=t.Value(bool=True))}
    await provider.send(publish_values_request=v.PublishValuesRequest(request_id=7, data_points=points))
    answer = (await provider.read()).publish_values_response
    assert answer.request_id == 7
    assert list(answer.status) == [9999] and answer.status[9999].code == t.ERROR_CODE_NOT_FOUND
    assert stack.broker.get(CAPACITY, access=UNRESTRICTED).value == 81
    await provider.outbox.put(None)
    async with asyncio.timeout(5):
        await provider.call.code()


def provide_signals(*signal_ids: int) -> dict[str, Any]:
    request = v.ProvideSignalRequest(
        signals_sample_intervals={signal_id: t.SampleInterval() for signal_id in signal_ids}
    )
    return {"provide_signal_request": request}


async def test_provided_signals_are_published_by_the_stream_only_until_it_ends(
    v2: VALStub, stack: Stack
) -> None:
    stack.broker.release(stack.hal_signals)
    capacity_id = stack.broker.metadata(CAPACITY, access=UNRESTRICTED).id
    provider = Provider(v2)
    await provider.send(**provide_signals(capacity_id))
    assert (await provider.read()).HasField("provide_signal_response")
    points = {capacity_id: t.Datapoint(value=t.Value(uint32=82))}
    await provider.send(publish_values_request=v.PublishValuesRequest(request_id=1, data_points=points))

    async def published() -> bool:
        return stack.broker.get(CAPACITY, access=UNRESTRICTED).value == 82

    await wait_until_async(published, what=f"the provider's value of {CAPACITY}")
    publish = v.PublishValueRequest(signal_id=t.SignalID(path=CAPACITY), data_point=points[capacity_id])
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await v2.PublishValue(publish)  # another publisher
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS

    await provider.outbox.put(None)
    async with asyncio.timeout(5):
        assert await provider.call.code() == grpc.StatusCode.OK
    await v2.PublishValue(publish)  # released with the stream


async def test_providing_a_signal_the_hal_feeds_ends_the_stream_with_already_exists(
    v2: VALStub, stack: Stack
) -> None:
    provider = Provider(v2)
    await provider.send(**provide_signals(stack.broker.metadata("Vehicle.Speed", access=UNRESTRICTED).id))
    async with asyncio.timeout(5):
        assert await provider.call.code() == grpc.StatusCode.ALREADY_EXISTS
    await provider.outbox.put(None)


async def test_publishing_a_signal_the_hal_feeds_is_refused_per_signal(v2: VALStub, stack: Stack) -> None:
    provider = Provider(v2)
    speed_id = stack.broker.metadata("Vehicle.Speed", access=UNRESTRICTED).id
    points = {speed_id: t.Datapoint(value=t.Value(float=1.0))}
    await provider.send(publish_values_request=v.PublishValuesRequest(request_id=3, data_points=points))
    answer = (await provider.read()).publish_values_response
    assert answer.status[speed_id].code == t.ERROR_CODE_PERMISSION_DENIED
    await provider.outbox.put(None)
    async with asyncio.timeout(5):
        await provider.call.code()
