"""VISS v2 subscriptions against gRPC ones in the same run: datapoints delivered per second and latency.

    python bench/bench_viss.py [--signals 200] [--subscribers 1 10] [--window 3]

This process runs the broker with the gRPC server and the VISS server on 127.0.0.1, as ``sdv serve --viss`` does;
a feeder thread publishes every one of ``--signals`` float sensors, all changed, every millisecond (as a provider
would). Subscribers run in a separate process, as apps would: kuksa.val.v2 ``Subscribe`` with ``grpc.aio``, and VISS
``subscribe`` over a WebSocket (subprotocol ``VISSv2``) with the ``websockets`` client, each subscribing to every
signal. After a warm-up every datapoint of every response or notification is counted over a fixed window, and
``receipt time - datapoint timestamp`` of the first datapoint of each message is recorded for latency (VISS
timestamps have millisecond resolution). The subscribers share one process and one core: at 10 subscribers its
decoding can bound what they take in, so the figures are a floor of what the server delivers.

Both transports read the broker's latest-value buffers, so a subscriber receives the latest value of each signal
that changed since its previous message; the ratio VISS/gRPC says how much of gRPC's delivery VISS keeps up with.
Prints figures; no pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time
from collections.abc import Sequence
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

import grpc
import websockets

from bench_broker import POLL_SECONDS, feeding, float_sensors
from sdv._proto.kuksa.val.v2 import val_pb2
from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALStub
from sdv.api.server import SdvServer
from sdv.broker import Broker
from sdv.viss.server import SUBPROTOCOL, VissServer

BRANCH = "Bench"


# --- subscriber process ----------------------------------------------------------------------------------------
def subscriber_process(
    transport: str,
    target: str,
    paths: Sequence[str],
    subscribers: int,
    warmup: float,
    window: float,
    conn: Connection,
) -> None:
    """Open ``subscribers`` subscriptions over ``transport``; after ``warmup`` count datapoints for ``window`` s."""
    conn.send(asyncio.run(_subscribe(transport, target, paths, subscribers, warmup, window, conn)))


def _viss_seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


async def _subscribe(
    transport: str,
    target: str,
    paths: Sequence[str],
    subscribers: int,
    warmup: float,
    window: float,
    conn: Connection,
) -> dict[str, Any]:
    counts = [0] * subscribers
    messages = [0] * subscribers
    latencies: list[float] = []
    measuring = [False]

    async def grpc_one(index: int, stub: VALStub) -> None:
        async for response in stub.Subscribe(val_pb2.SubscribeRequest(signal_paths=list(paths))):
            if measuring[0]:
                now = time.time()
                counts[index] += len(response.entries)
                messages[index] += 1
                entry = next(iter(response.entries.values()), None)  # one sample per message: the client
                if entry is not None:  # must not be the bottleneck it measures
                    latencies.append(now - (entry.timestamp.seconds + entry.timestamp.nanos / 1e9))

    async def viss_one(index: int) -> None:
        request = {
            "action": "subscribe",
            "path": BRANCH,
            "requestId": str(index),
            "filter": {"variant": "paths", "parameter": ["*"]},
        }
        async with websockets.connect(f"ws://{target}", subprotocols=[SUBPROTOCOL], max_size=None) as socket:
            await socket.send(json.dumps(request))
            async for message in socket:
                if measuring[0]:
                    now = time.time()
                    data = json.loads(message).get("data", [])
                    counts[index] += len(data)
                    messages[index] += 1
                    if data:
                        latencies.append(now - _viss_seconds(data[0]["dp"]["ts"]))

    if transport == "grpc":
        channel = grpc.aio.insecure_channel(target)
        stub = VALStub(channel)
        tasks = [asyncio.create_task(grpc_one(index, stub)) for index in range(subscribers)]
    else:
        tasks = [asyncio.create_task(viss_one(index)) for index in range(subscribers)]
    await asyncio.sleep(warmup)
    measuring[0] = True
    start = time.perf_counter()
    await asyncio.sleep(window)
    measuring[0] = False
    elapsed = time.perf_counter() - start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if transport == "grpc":
        await channel.close()
    return {"counts": counts, "messages": messages, "elapsed": elapsed, "latencies": latencies}


# --- server side -----------------------------------------------------------------------------------------------
def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def _run(
    transport: str, target: str, paths: Sequence[str], subscribers: int, warmup: float, window: float
) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=subscriber_process, args=(transport, target, paths, subscribers, warmup, window, child)
    )
    process.start()
    loop = asyncio.get_running_loop()
    result: dict[str, Any] = await loop.run_in_executor(None, parent.recv)
    await loop.run_in_executor(None, process.join)
    return result


async def compare(signals: int, counts: Sequence[int], warmup: float, window: float) -> None:
    metadata = float_sensors(signals)
    paths = [meta.path for meta in metadata]
    broker = Broker(metadata)
    with feeding(broker, paths):
        async with SdvServer(broker, port=0) as server, VissServer(broker, port=0) as viss:
            await asyncio.sleep(warmup)
            published, started = broker.updates_published, time.perf_counter()
            await asyncio.sleep(window)
            offered = (broker.updates_published - published) / (time.perf_counter() - started)
            print(
                f"VISS v2 and gRPC subscriptions: {signals:,} float sensors, all changed every {POLL_SECONDS * 1000:g} ms"
            )
            print(f"  offered with no subscriber: {offered:,.0f} updates/s")
            print(
                f"  {'subscribers':>11} {'transport':>9} {'per subscriber/s':>17} {'datapoints/message':>19}"
                f" {'p50 ms':>7} {'p99 ms':>7} {'VISS/gRPC':>10}"
            )
            for subscribers in counts:
                per_subscriber: dict[str, float] = {}
                for transport, target in (("grpc", server.target), ("viss", viss.target)):
                    result = await _run(transport, target, paths, subscribers, warmup, window)
                    per_subscriber[transport] = statistics.fmean(result["counts"]) / result["elapsed"]
                    per_message = sum(result["counts"]) / max(1, sum(result["messages"]))
                    ratio = (
                        f"{per_subscriber['viss'] / per_subscriber['grpc']:>10.2f}"
                        if transport == "viss"
                        else ""
                    )
                    print(
                        f"  {subscribers:>11} {transport:>9} {per_subscriber[transport]:>17,.0f} {per_message:>19.1f}"
                        f" {_percentile(result['latencies'], 0.5) * 1000:>7.2f}"
                        f" {_percentile(result['latencies'], 0.99) * 1000:>7.2f} {ratio}"
                    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=200, help="float sensors published every millisecond")
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 10], help="subscribers per run")
    parser.add_argument("--window", type=float, default=3.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    args = parser.parse_args()
    asyncio.run(compare(args.signals, args.subscribers, args.warmup, args.window))


if __name__ == "__main__":
    main()
