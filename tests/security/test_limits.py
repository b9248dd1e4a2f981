"""Stream limits of the call guard, over a real server on 127.0.0.1: refused with a clear message, and the
slot is free again once a stream ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest

from sdv.api._proto.kuksa.val.v2 import val_pb2, val_pb2_grpc
from sdv.api.server import SdvServer
from sdv.broker import Broker, Limits
from sdv.hal.vehicle import VehicleModel

SPEED = "Vehicle.Speed"


@pytest.fixture
async def stub(demo_vehicle: VehicleModel) -> AsyncIterator[val_pb2_grpc.VALStub]:
    broker = Broker.from_vehicle(demo_vehicle, Limits(max_streams=2, max_provider_streams=1))
    async with SdvServer(broker, port=0) as server, grpc.aio.insecure_channel(server.target) as channel:
        yield val_pb2_grpc.VALStub(channel)


async def _refusal(call: grpc.aio.UnaryStreamCall | grpc.aio.StreamStreamCall) -> str:  # type: ignore[type-arg]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call.read()
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    return refused.value.details() or ""


async def test_streams_beyond_max_streams_are_refused_until_one_ends(stub: val_pb2_grpc.VALStub) -> None:
    request = val_pb2.SubscribeRequest(signal_paths=[SPEED])
    first, second = stub.Subscribe(request), stub.Subscribe(request)
    await first.read()
    await second.read()
    assert await _refusal(stub.Subscribe(request)) == "2 streams are open; the limit is 2"
    first.cancel()
    for _ in range(100):  # the server sees the cancellation shortly
        again = stub.Subscribe(request)
        try:
            await again.read()
            break
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.05)
    else:
        pytest.fail("the ended stream's slot was not freed")
    again.cancel()
    second.cancel()


async def test_provider_streams_beyond_their_limit_are_refused(stub: val_pb2_grpc.VALStub) -> None:
    first = stub.OpenProviderStream()
    second = stub.OpenProviderStream()
    try:
        await asyncio.sleep(0.2)  # the first one is open on the server
        with contextlib.suppress(asyncio.InvalidStateError, grpc.aio.AioRpcError):
            await second.write(val_pb2.OpenProviderStreamRequest())
        assert await _refusal(second) == "1 provider streams are open; the limit is 1"
    finally:
        first.cancel()
        second.cancel()
