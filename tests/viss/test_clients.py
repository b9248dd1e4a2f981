"""VISS clients beside gRPC ones: the same changes for both, and a VISS client that never reads harms no one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import websockets

from sdv.client import VehicleClient
from tests.serve_process import REPOSITORY
from tests.viss.conftest import ServeProcess, connect, notifications, request, serve_viss, write_limits
from tests.waiting import DEADLINE_S

PRESSURE = "Vehicle.SDV.Chassis.Brake.Pressure"
SEND_TIMEOUT_S = 1
FLOODS = 60


@pytest.fixture(scope="module")
def pure_broker() -> Iterator[ServeProcess]:
    """A broker without HAL: every signal of the overlay open to providers."""
    with serve_viss("--vss", str(REPOSITORY / "hal" / "vss_sdv_overlay.json")) as running:
        yield running


async def _grpc_values(subscription: AsyncIterator[dict[str, Any]], until: float) -> list[float | None]:
    seen: list[float | None] = []
    async for batch in subscription:
        seen.append(batch[PRESSURE].value)
        if seen[-1] == until:
            return seen
    raise AssertionError("the gRPC subscription ended")


async def _viss_values(connection: Any, subscription_id: str, until: float) -> list[float | None]:
    seen: list[float | None] = []
    while True:
        value = (await notifications(connection, subscription_id, 1))[0]["data"]["dp"]["value"]
        seen.append(None if value is None else float(value))
        if seen[-1] == until:
            return seen


async def test_a_viss_and_a_grpc_subscriber_see_the_same_changes(pure_broker: ServeProcess) -> None:
    target = f"127.0.0.1:{pure_broker.grpc_port}"
    async with (
        VehicleClient(target) as publisher,
        VehicleClient(target) as subscriber,
        await connect(pure_broker) as viss,
    ):
        answer = await request(viss, {"action": "subscribe", "path": PRESSURE, "requestId": "s"})
        grpc_subscription = subscriber.subscribe([PRESSURE])
        async with contextlib.aclosing(grpc_subscription):
            first_grpc = (await anext(grpc_subscription))[PRESSURE].value
            first_viss = (await notifications(viss, answer["subscriptionId"], 1))[0]["data"]["dp"]["value"]
            assert first_grpc is None and first_viss is None  # nothing was published yet
            grpc_seen, viss_seen = [], []
            async with asyncio.timeout(DEADLINE_S):
                for value in (1.5, 2.5, 10.0, 2.5, 0.0):  # each published once both saw the one before
                    await publisher.publish(PRESSURE, value)
                    grpc_seen += await _grpc_values(grpc_subscription, value)
                    viss_seen += await _viss_values(viss, answer["subscriptionId"], value)
    assert grpc_seen == viss_seen == [1.5, 2.5, 10.0, 2.5, 0.0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    limits = write_limits(
        tmp_path_factory.mktemp("stall"), send_timeout_s=SEND_TIMEOUT_S, send_queue_messages=4
    )
    with serve_viss("--viss-limits", str(limits)) as running:
        yield running


@pytest.mark.slow
async def test_a_client_that_never_reads_is_disconnected_and_others_are_served_meanwhile(
    demo: ServeProcess,
) -> None:
    # A tiny receive window, and a client that stops taking frames off its socket after one message: everything
    # the server writes piles up on the server's side until the send timeout.
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", demo.viss_port))
    stalled = await websockets.connect(
        demo.ws, sock=raw, subprotocols=[websockets.Subprotocol("VISSv2")], max_queue=1
    )
    try:
        flood = {
            "action": "subscribe",
            "path": "Vehicle",
            "requestId": "flood",
            "filter": {"variant": "timebased", "parameter": {"period": "10"}},
        }
        for _ in range(FLOODS):  # every signal a hundred times a second, times FLOODS: megabytes a second
            await stalled.send(json.dumps(flood))
        async with await connect(demo) as bystander:
            answers = 0
            deadline = asyncio.get_running_loop().time() + DEADLINE_S
            while not any("disconnecting VISS client" in line for line in list(demo.errors)):
                answer = await request(
                    bystander, {"action": "get", "path": "Vehicle.Speed", "requestId": str(answers)}
                )
                assert "data" in answer
                answers += 1
                assert asyncio.get_running_loop().time() < deadline, (
                    "the stalled client was never disconnected"
                )
            assert answers > 0
            # still served after the stalled client is gone
            assert "data" in await request(
                bystander, {"action": "get", "path": "Vehicle.Speed", "requestId": "end"}
            )
        line = demo.wait_for_log("disconnecting VISS client")
        assert f"{SEND_TIMEOUT_S:g} s" in line
    finally:
        stalled.transport.abort()
        with contextlib.suppress(Exception):
            await stalled.close()
