"""What the SDK puts on the wire and how it survives a server killed with SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

import sdv
from sdv._proto.kuksa.val.v2 import types_pb2, val_pb2, val_pb2_grpc
from sdv.sdk import ReconnectPolicy

REPOSITORY = Path(__file__).resolve().parents[2]
SPEED = "Vehicle.Speed"


class _RecordingServicer(val_pb2_grpc.VALServicer):
    """Answers GetServerInfo and Subscribe, and keeps the metadata of every call."""

    def __init__(self) -> None:
        self.metadata: list[tuple[str, dict[str, str | bytes]]] = []

    def _record(self, method: str, context: grpc.aio.ServicerContext[object, object]) -> None:
        self.metadata.append((method, dict(context.invocation_metadata() or ())))

    async def GetServerInfo(
        self, request: val_pb2.GetServerInfoRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> val_pb2.GetServerInfoResponse:
        self._record("GetServerInfo", context)
        return val_pb2.GetServerInfoResponse(name="recorder", version="0")

    async def ListMetadata(
        self, request: val_pb2.ListMetadataRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> val_pb2.ListMetadataResponse:
        self._record("ListMetadata", context)
        speed = types_pb2.Metadata(
            id=1,
            path=SPEED,
            data_type=types_pb2.DATA_TYPE_FLOAT,
            entry_type=types_pb2.ENTRY_TYPE_SENSOR,
            unit="km/h",
        )
        return val_pb2.ListMetadataResponse(metadata=[speed])

    async def Subscribe(
        self, request: val_pb2.SubscribeRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> AsyncIterator[val_pb2.SubscribeResponse]:
        self._record("Subscribe", context)
        yield val_pb2.SubscribeResponse(entries={SPEED: types_pb2.Datapoint()})


@pytest.mark.parametrize("token", ["abc.def.ghi", None])
async def test_a_token_travels_as_bearer_authorization(token: str | None) -> None:
    servicer = _RecordingServicer()
    server = grpc.aio.server()
    val_pb2_grpc.add_VALServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with sdv.connect(f"127.0.0.1:{port}", token=token) as vehicle:
            updates = vehicle.subscribe([SPEED])
            async with contextlib.aclosing(updates):
                speed = (await anext(updates))[SPEED]
    finally:
        await server.stop(None)
    assert (speed.value, speed.unit) == (None, "km/h")
    assert [method for method, _ in servicer.metadata] == ["GetServerInfo", "ListMetadata", "Subscribe"]
    expected = None if token is None else f"Bearer {token}"
    assert all(metadata.get("authorization") == expected for _, metadata in servicer.metadata)


def _serve(port: int) -> tuple[subprocess.Popen[str], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sdv.cli.main", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPOSITORY,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.fullmatch(r"sdv serve: listening on 127\.0\.0\.1:(\d+)\n", line)
    if not match:
        process.kill()
        process.wait()
        raise AssertionError(f"sdv serve did not start: {line!r}")
    return process, int(match.group(1))


async def test_a_subscription_survives_a_server_killed_and_restarted() -> None:
    policy = ReconnectPolicy(initial_delay=0.05, max_delay=0.25)
    first, port = _serve(0)
    restarted: subprocess.Popen[str] | None = None
    try:
        async with sdv.connect(f"127.0.0.1:{port}", reconnect=policy) as vehicle:
            updates = vehicle.subscribe(["Vehicle.Exterior.AirTemperature", SPEED])
            async with contextlib.aclosing(updates), asyncio.timeout(30):
                assert SPEED in await anext(updates)
                first.send_signal(signal.SIGKILL)
                first.wait()
                restarted, _ = await asyncio.to_thread(_serve, port)
                batch = await anext(updates)  # the restarted server's first batch: every signal
                assert set(batch) == {"Vehicle.Exterior.AirTemperature", SPEED}
                assert batch[SPEED].unit == "km/h"
    finally:
        for process in (first, restarted):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
