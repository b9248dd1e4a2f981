"""A flood of actuations to a provider that claims an actuator and never reads, over a real server on 127.0.0.1.

gRPC accepts every message the server writes to a stream and buffers it for the peer, whether the peer reads or
not, so what the server sends a stalled provider would grow with every actuation. The server bounds it: a
provider has at most ``Limits.max_pending_actuations`` requests it has not answered (timed-out ones included,
their bytes still wait for it); beyond that an actuation is refused at once with ``RESOURCE_EXHAUSTED``.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from sdv._proto.kuksa.val.v2 import types_pb2 as t
from sdv._proto.kuksa.val.v2 import val_pb2 as v
from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALStub
from sdv.api.provider_stream import ProviderSession
from sdv.api.server import SdvServer
from sdv.broker import Broker, Limits
from sdv.types.signals import SignalMetadata

from ..waiting import wait_until_async

ACTUATOR = "Vehicle.Body.Lights.Beam.Low.IsOn"
BOUND = 20


@pytest.fixture
async def served() -> AsyncIterator[tuple[Broker, VALStub]]:
    metadata = [SignalMetadata(id=1, path=ACTUATOR, kind="actuator", datatype="boolean")]
    broker = Broker(metadata, Limits(actuation_timeout_s=0.3, max_pending_actuations=BOUND))
    async with SdvServer(broker, port=0) as server, grpc.aio.insecure_channel(server.target) as channel:
        yield broker, VALStub(channel)


async def _claim(stub: VALStub) -> Any:
    call = stub.OpenProviderStream()
    claim = v.ProvideActuationRequest(actuator_identifiers=[t.SignalID(path=ACTUATOR)])
    await call.write(v.OpenProviderStreamRequest(provide_actuation_request=claim))
    assert (await asyncio.wait_for(call.read(), 10)).HasField("provide_actuation_response")
    return call


async def _flood(stub: VALStub, count: int) -> collections.Counter[grpc.StatusCode]:
    request = v.ActuateRequest(signal_id=t.SignalID(path=ACTUATOR), value=t.Value(bool=True))
    # Fewer calls at once than the server's HTTP/2 max_concurrent_streams (100): beyond it a client racing the
    # server's settings can have a call refused by the transport (UNAVAILABLE), which is not what is tested.
    in_flight = asyncio.Semaphore(50)

    async def one() -> grpc.StatusCode:
        async with in_flight:
            try:
                await asyncio.wait_for(stub.Actuate(request), 30)
            except grpc.aio.AioRpcError as error:
                return error.code()
            return grpc.StatusCode.OK

    return collections.Counter(await asyncio.gather(*(one() for _ in range(count))))


def _session(broker: Broker) -> ProviderSession:
    provider = broker.actuation_provider(ACTUATOR)
    assert isinstance(provider, ProviderSession)
    return provider


async def test_a_stalled_provider_holds_at_most_the_bound_and_the_rest_is_refused(
    served: tuple[Broker, VALStub],
) -> None:
    broker, stub = served
    provider = await _claim(stub)
    try:
        first = await _flood(stub, 200)
        session = _session(broker)
        assert session.pending_actuations == BOUND
        assert first == {
            grpc.StatusCode.DEADLINE_EXCEEDED: BOUND,
            grpc.StatusCode.RESOURCE_EXHAUSTED: 200 - BOUND,
        }
        # Timed out, the requests still wait for the provider: the next flood is refused as a whole.
        assert await _flood(stub, 100) == {grpc.StatusCode.RESOURCE_EXHAUSTED: 100}
        assert session.pending_actuations == BOUND
    finally:
        provider.cancel()


async def test_refusal_names_the_provider_and_the_limit(served: tuple[Broker, VALStub]) -> None:
    _, stub = served
    provider = await _claim(stub)
    try:
        await _flood(stub, BOUND)
        request = v.ActuateRequest(signal_id=t.SignalID(path=ACTUATOR), value=t.Value(bool=True))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Actuate(request)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"{BOUND} actuation requests it has not answered; the limit is {BOUND}" in (
            refused.value.details() or ""
        )
    finally:
        provider.cancel()


async def test_answers_make_room_and_a_disconnect_frees_everything(served: tuple[Broker, VALStub]) -> None:
    broker, stub = served
    provider = await _claim(stub)
    await _flood(stub, BOUND)
    session = _session(broker)
    for _ in range(5):  # the provider catches up: it reads five requests and answers them
        forwarded = await asyncio.wait_for(provider.read(), 10)
        for item in forwarded.batch_actuate_stream_request.actuate_requests:
            await provider.write(
                v.OpenProviderStreamRequest(
                    batch_actuate_stream_response=v.BatchActuateStreamResponse(signal_id=item.signal_id)
                )
            )

    async def made_room() -> bool:
        return session.pending_actuations == BOUND - 5

    await wait_until_async(made_room, what=f"{BOUND - 5} pending actuations after five answers")
    assert await _flood(stub, 10) == {
        grpc.StatusCode.DEADLINE_EXCEEDED: 5,
        grpc.StatusCode.RESOURCE_EXHAUSTED: 5,
    }
    provider.cancel()

    async def released() -> bool:
        return broker.actuation_provider(ACTUATOR) is None

    await wait_until_async(released, what="the disconnected provider's claim to be released")
    assert session.pending_actuations == 0
    assert await _flood(stub, 3) == {grpc.StatusCode.UNAVAILABLE: 3}
