"""Status messages stay short whatever the request, over a real server on 127.0.0.1.

gRPC carries a status message in the ``grpc-message`` trailer, percent-encoded, within the peer's metadata limit
(8 KiB by default); a longer one reaches the caller as ``RESOURCE_EXHAUSTED`` or ``UNAVAILABLE`` instead of the
status the server meant. Each row is a request whose honest answer once named too much.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from sdv._proto.kuksa.val.v2 import types_pb2 as t
from sdv._proto.kuksa.val.v2 import val_pb2 as v
from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALStub
from sdv.api.errors import MAX_STATUS_MESSAGE_BYTES, bounded_message
from sdv.api.server import SdvServer
from sdv.broker import Broker, Limits
from sdv.types.signals import SignalMetadata

ACTUATORS = [
    f"Vehicle.Cabin.Seat.Row{row}.Position.Motor{motor:03d}.IsMoving"
    for row in range(10)
    for motor in range(100)
]


@pytest.fixture
async def stub() -> AsyncIterator[VALStub]:
    metadata = [
        SignalMetadata(id=i + 1, path=path, kind="actuator", datatype="boolean")
        for i, path in enumerate(ACTUATORS)
    ]
    broker = Broker(metadata, Limits(actuation_timeout_s=0.5))
    async with SdvServer(broker, port=0) as server, grpc.aio.insecure_channel(server.target) as channel:
        yield VALStub(channel)


async def _stalled_provider(stub: VALStub) -> Any:
    """A provider stream that claims every actuator and then never answers (nor reads)."""
    call = stub.OpenProviderStream()
    claim = v.ProvideActuationRequest(actuator_identifiers=[t.SignalID(path=path) for path in ACTUATORS])
    await call.write(v.OpenProviderStreamRequest(provide_actuation_request=claim))
    response = await asyncio.wait_for(call.read(), 10)
    assert response.HasField("provide_actuation_response")
    return call


def _encoded_length(message: str) -> int:
    """The length of ``message`` as gRPC sends it (percent-encoding every byte outside printable ASCII)."""
    return sum(1 if 0x20 <= byte < 0x7F and byte != 0x25 else 3 for byte in message.encode())


async def test_a_timed_out_batch_of_1000_actuations_is_deadline_exceeded_with_a_short_message(
    stub: VALStub,
) -> None:
    provider = await _stalled_provider(stub)
    try:
        batch = v.BatchActuateRequest(
            actuate_requests=[
                v.ActuateRequest(signal_id=t.SignalID(path=path), value=t.Value(bool=True))
                for path in ACTUATORS
            ]
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await asyncio.wait_for(stub.BatchActuate(batch), 30)
    finally:
        provider.cancel()
    assert refused.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    details = refused.value.details() or ""
    assert details.startswith(f"{ACTUATORS[0]}, {ACTUATORS[1]}")
    assert "and 995 more" in details and "Limits.actuation_timeout_s" in details
    assert len(details.encode()) <= MAX_STATUS_MESSAGE_BYTES


async def test_an_unknown_path_of_1000_non_ascii_characters_is_not_found_with_a_short_message(
    stub: VALStub,
) -> None:
    path = "Vehicle." + "\u00e9" * 992
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetValue(v.GetValueRequest(signal_id=t.SignalID(path=path)))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    details = refused.value.details() or ""
    assert details.startswith("unknown signal 'Vehicle.\u00e9")
    assert len(details.encode()) <= MAX_STATUS_MESSAGE_BYTES and _encoded_length(details) < 8192


@pytest.mark.parametrize(
    "message", ["short", "x" * MAX_STATUS_MESSAGE_BYTES, "x" * 50_000, "\u00e9" * 5_000, "\U0001f697" * 3_000]
)
def test_bounded_message_keeps_whole_characters_and_says_what_it_cut(message: str) -> None:
    bounded = bounded_message(message)
    assert len(bounded.encode()) <= MAX_STATUS_MESSAGE_BYTES
    if len(message.encode()) <= MAX_STATUS_MESSAGE_BYTES:
        assert bounded == message
    else:
        kept = bounded[: bounded.rindex(" ... (")]
        assert message.startswith(kept)
        assert bounded.endswith(f" ... ({len(message) - len(kept)} more characters)")
