"""Hostile clients against ``sdv serve`` as a real process, while a well-behaved subscriber watches.

Malformed and oversized requests, thousands of subscription attempts, subscribers that never read, and clients
killed mid-stream. The well-behaved subscriber keeps receiving the demo drive's speed through every phase, every
refused request gets a clear status, the server keeps serving, and its memory does not grow from one round of
attacks to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from sdv._proto.kuksa.val.v2 import types_pb2, val_pb2, val_pb2_grpc
from tests.serve_process import REPOSITORY, serving
from tests.waiting import DEADLINE_S

SPEED = "Vehicle.Speed"
FRAMES = "Sdv.Hal.Bus.vehicle.Frames"
LIMITS = """\
max_message_bytes: 1048576
max_subscriptions: 300
max_subscriptions_per_client: 50
max_concurrent_streams: 1000
max_streams: 400
"""
_HOLDER = """
import asyncio, sys, grpc
from sdv._proto.kuksa.val.v2 import val_pb2, val_pb2_grpc
async def main(target, count):
    channel = grpc.aio.insecure_channel(target)
    stub = val_pb2_grpc.VALStub(channel)
    calls = [stub.Subscribe(val_pb2.SubscribeRequest(signal_paths=["Vehicle.Speed"])) for _ in range(count)]
    for call in calls:
        await call.read()
    print("holding", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """``sdv serve`` with tight limits, as a process: (port, pid)."""
    limits = tmp_path_factory.mktemp("hostile") / "limits.yaml"
    limits.write_text(LIMITS)
    with serving("--limits", str(limits)) as (port, process):
        yield port, process.pid


class Watcher:
    """A well-behaved subscriber of the speed that counts the responses it receives."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.received = 0
        self._task: asyncio.Task[None] | None = None

    async def _watch(self) -> None:
        async with grpc.aio.insecure_channel(self.target) as channel:
            stub = val_pb2_grpc.VALStub(channel)
            # The frame counter changes every second even while the car stands still.
            request = val_pb2.SubscribeRequest(signal_paths=[SPEED, FRAMES])
            while True:
                try:
                    async for _ in stub.Subscribe(request):
                        self.received += 1
                    return
                except grpc.aio.AioRpcError as error:
                    # Subscriptions of an earlier test's clients may still be releasing: wait for a slot.
                    if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or self.received:
                        raise
                    await asyncio.sleep(0.2)

    async def __aenter__(self) -> Watcher:
        self._task = asyncio.create_task(self._watch())
        await self.keeps_receiving("start")
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def keeps_receiving(self, phase: str) -> None:
        """Wait (up to :data:`DEADLINE_S`) for two more updates."""
        start = self.received
        deadline = time.monotonic() + DEADLINE_S
        while self.received < start + 2:
            assert self._task is not None and not self._task.done(), f"the watcher's stream ended in {phase}"
            assert time.monotonic() < deadline, f"the watcher received nothing during {phase}"
            await asyncio.sleep(0.05)


async def _status(call: object) -> grpc.StatusCode:
    try:
        await call  # type: ignore[misc]
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.fixture
async def watcher(server: tuple[int, int]) -> AsyncIterator[Watcher]:
    async with Watcher(f"127.0.0.1:{server[0]}") as watcher:
        yield watcher


async def test_malformed_and_oversized_requests_are_refused(
    server: tuple[int, int], watcher: Watcher
) -> None:
    target = watcher.target
    async with grpc.aio.insecure_channel(target) as channel:
        raw = channel.unary_unary("/kuksa.val.v2.VAL/GetValue")
        garbage = [b"\xff" * 64, b"\x0a\xff\xff\xff\xff\x0f", bytes(range(256))]
        assert {await _status(raw(payload)) for payload in garbage} == {grpc.StatusCode.INVALID_ARGUMENT}
        unknown = channel.unary_unary("/kuksa.val.v2.VAL/NoSuchMethod")
        assert await _status(unknown(b"")) == grpc.StatusCode.UNIMPLEMENTED
        assert await _status(raw(b"\x00" * (2 * 1024 * 1024))) == grpc.StatusCode.RESOURCE_EXHAUSTED
        stub = val_pb2_grpc.VALStub(channel)
        huge_path = types_pb2.SignalID(path="Vehicle." + "X" * 5000)
        assert (
            await _status(stub.GetValue(val_pb2.GetValueRequest(signal_id=huge_path)))
            == grpc.StatusCode.INVALID_ARGUMENT
        )
        many = val_pb2.GetValuesRequest(signal_ids=[types_pb2.SignalID(path=SPEED)] * 5000)
        assert await _status(stub.GetValues(many)) == grpc.StatusCode.INVALID_ARGUMENT
        greedy = val_pb2.SubscribeRequest(signal_paths=[SPEED], buffer_size=10**6)
        call = stub.Subscribe(greedy)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call.read()
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "buffer_size" in (refused.value.details() or "")
    await watcher.keeps_receiving("malformed requests")


async def _subscribe_many(
    target: str, connections: int, per_connection: int
) -> tuple[list[grpc.aio.Channel], list[object], dict[grpc.StatusCode, int]]:
    """Open subscriptions and read only their first response; the accepted ones are then never read again."""
    # A local subchannel pool gives each channel a connection of its own (gRPC shares them otherwise).
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(connections)
    ]
    outcomes: dict[grpc.StatusCode, int] = {}
    details: set[str] = set()
    open_calls = []
    for channel in channels:  # a connection at a time: 100 calls in flight at once
        calls = [
            val_pb2_grpc.VALStub(channel).Subscribe(val_pb2.SubscribeRequest(signal_paths=[SPEED]))
            for _ in range(per_connection)
        ]
        for call in calls:
            try:
                await call.read()
                outcomes[grpc.StatusCode.OK] = outcomes.get(grpc.StatusCode.OK, 0) + 1
                open_calls.append(call)
            except grpc.aio.AioRpcError as error:
                outcomes[error.code()] = outcomes.get(error.code(), 0) + 1
                details.add(re.sub(r"\d+", "N", error.details() or ""))
    assert details <= {
        "N subscriptions are open; the limit is N",
        "ipvN:N.N.N.N:N has N subscriptions open; the limit per client is N",
    }, (details, outcomes)
    return channels, open_calls, outcomes


@pytest.mark.slow
async def test_thousands_of_subscriptions_and_subscribers_that_never_read(
    server: tuple[int, int], watcher: Watcher
) -> None:
    pid = server[1]
    rss: list[int] = []
    for round_ in range(3):
        channels, _, outcomes = await _subscribe_many(watcher.target, connections=20, per_connection=100)
        # 2,000 attempts: 50 per connection at most, 300 open in all (the watcher holds one).
        assert outcomes[grpc.StatusCode.OK] == 299
        assert outcomes[grpc.StatusCode.RESOURCE_EXHAUSTED] == 2000 - 299
        await watcher.keeps_receiving(f"round {round_} with 299 subscribers that never read")
        for channel in channels:  # the clients go away; the server releases their subscriptions
            await channel.close(None)
        await asyncio.sleep(0.5)
        rss.append(_rss_kib(pid))
        await watcher.keeps_receiving(f"after round {round_}")
    # Memory is bounded: a round of attacks leaves no more behind than the one before it.
    assert rss[2] - rss[1] < 8 * 1024, rss


@pytest.mark.slow
async def test_clients_killed_mid_stream_leave_nothing_behind(
    server: tuple[int, int], watcher: Watcher
) -> None:
    holders = [
        subprocess.Popen(
            [sys.executable, "-c", _HOLDER, watcher.target, "50"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPOSITORY,
        )
        for _ in range(5)
    ]
    try:
        for holder in holders:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        await watcher.keeps_receiving("250 subscriptions held by other processes")
    finally:
        for holder in holders:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
    await watcher.keeps_receiving("after the holders were killed")
    # Their 250 subscriptions were released: the server's whole budget is available again.
    deadline = time.monotonic() + DEADLINE_S
    while True:
        channels, _, outcomes = await _subscribe_many(watcher.target, connections=6, per_connection=50)
        accepted = outcomes.get(grpc.StatusCode.OK, 0)
        for channel in channels:
            await channel.close(None)
        if accepted == 299 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    assert accepted == 299
