"""Stream limits of the call guard, over a real server on 127.0.0.1: refused with a clear message, and the
slot is free again once a stream ends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc
import pytest

from sdv._proto.kuksa.val.v2 import val_pb2, val_pb2_grpc
from sdv.api.server import SdvServer
from sdv.broker import Broker, Limits
from sdv.hal.vehicle import VehicleDefinition

from ..waiting import wait_until_async

SPEED = "Vehicle.Speed"


@pytest.fixture
async def server(demo_vehicle: VehicleDefinition) -> AsyncIterator[SdvServer]:
    # A generous drain, so that a client slowed by a loaded machine still half-closes within it.
    limits = Limits(max_streams=2, max_provider_streams=1, refused_stream_drain_s=5)
    broker = Broker.from_vehicle(demo_vehicle, limits)
    async with SdvServer(broker, port=0) as server:
        yield server


@pytest.fixture
async def stub(server: SdvServer) -> AsyncIterator[val_pb2_grpc.VALStub]:
    async with grpc.aio.insecure_channel(server.target) as channel:
        yield val_pb2_grpc.VALStub(channel)


async def _read(call: grpc.aio.UnaryStreamCall | grpc.aio.StreamStreamCall) -> object:  # type: ignore[type-arg]
    return await asyncio.wait_for(
        call.read(), 10
    )  # a bound, so that a wrong outcome fails instead of hanging


async def _refusal(call: grpc.aio.UnaryStreamCall | grpc.aio.StreamStreamCall) -> str:  # type: ignore[type-arg]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _read(call)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    return refused.value.details() or ""


async def test_streams_beyond_max_streams_are_refused_until_one_ends(stub: val_pb2_grpc.VALStub) -> None:
    request = val_pb2.SubscribeRequest(signal_paths=[SPEED])
    first, second = stub.Subscribe(request), stub.Subscribe(request)
    await _read(first)
    await _read(second)
    assert await _refusal(stub.Subscribe(request)) == "2 streams are open; the limit is 2"
    first.cancel()

    async def admitted() -> (
        grpc.aio.UnaryStreamCall[val_pb2.SubscribeRequest, val_pb2.SubscribeResponse] | None
    ):
        again = stub.Subscribe(request)
        try:
            await _read(again)
        except grpc.aio.AioRpcError:
            return None
        return again

    # the server sees the cancellation shortly
    again = await wait_until_async(admitted, what="the ended stream's slot to be freed")
    again.cancel()
    second.cancel()


async def test_provider_streams_beyond_their_limit_are_refused(
    server: SdvServer, stub: val_pb2_grpc.VALStub
) -> None:
    first = stub.OpenProviderStream()
    second = None
    try:

        async def held() -> bool:
            return server.guard.open_provider_streams == 1

        await wait_until_async(held, what="the server to hold the first provider stream open")
        second = stub.OpenProviderStream()
        with contextlib.suppress(asyncio.InvalidStateError, grpc.aio.AioRpcError):
            await second.write(val_pb2.OpenProviderStreamRequest())
        assert await _refusal(second) == "1 provider streams are open; the limit is 1"
    finally:
        first.cancel()
        if second is not None:
            second.cancel()


async def test_a_refused_stream_whose_client_keeps_writing_still_ends_resource_exhausted(
    server: SdvServer, stub: val_pb2_grpc.VALStub
) -> None:
    """A client writing from a request iterator while the refusal is on its way used to see its own failed
    write (INTERNAL or CANCELLED) instead of the server's RESOURCE_EXHAUSTED."""
    holders = [stub.Subscribe(val_pb2.SubscribeRequest(signal_paths=[SPEED])) for _ in range(2)]
    try:
        for holder in holders:
            await _read(holder)

        async def flood() -> AsyncIterator[val_pb2.OpenProviderStreamRequest]:
            for _ in range(1000):
                yield val_pb2.OpenProviderStreamRequest(provide_signal_request=val_pb2.ProvideSignalRequest())

        refusals = []
        for _ in range(10):
            call = stub.OpenProviderStream(flood())
            refusals.append(await _refusal_code(call))
            call.cancel()
        assert refusals == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 10
    finally:
        for holder in holders:
            holder.cancel()


async def _refusal_code(call: grpc.aio.StreamStreamCall) -> grpc.StatusCode:  # type: ignore[type-arg]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _read(call)
    return refused.value.code()
