"""Pure broker mode (``sdv serve --vss``): catalogue load time, and the publish rate of an outside provider
against the HAL's own path, in the same run.

(a) Load: ``load_catalogue`` of the full VSS 4.0 release plus ``Broker.from_catalogue`` (what ``sdv serve --vss``
    does before it listens), best of ``--repeat``.
(b) Publish rate into the broker, one signal, with 1 and 10 subscribers of it draining on the event loop:
    the HAL path (``Broker.publish``, a batch of one update, no ownership or value check) is the baseline; the
    provider path is ``Broker.publish_value`` (value checked against the catalogue's metadata, ownership
    checked), the work behind both v2 ``PublishValue`` and a provider stream's ``PublishValuesRequest``.
(c) The same over real gRPC, the server on 127.0.0.1 as ``sdv serve --vss`` runs it, 0 (the transport alone), 1
    and 10 v2 ``Subscribe`` streams of the signal in a subscriber process (as apps would): the HAL path is a feeder thread in the server
    process calling ``Broker.publish`` as the HAL's reader threads do; the provider path is a provider process
    that claims the signal (``OpenProviderStream``, ``ProvideSignalRequest``) and sends one
    ``PublishValuesRequest`` per value as fast as the stream takes them. Published is what reached the broker
    per second over the measured window, delivered what each subscriber received per second.

Prints figures and ratios; no pass/fail.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc

from bench_broker import subscriber_process
from sdv._proto.kuksa.val.v2 import types_pb2, val_pb2
from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALStub
from sdv.api.server import SdvServer
from sdv.broker import Broker
from sdv.broker.access import UNRESTRICTED
from sdv.hal.processor import SignalUpdate, Status
from sdv.vss import load_catalogue

SIGNAL = "Vehicle.Speed"


def load_seconds(path: Path, repeat: int) -> tuple[float, int]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        started = time.perf_counter()
        broker = Broker.from_catalogue(load_catalogue([path]))
        best = min(best, time.perf_counter() - started)
        count = len(broker.list_metadata(access=UNRESTRICTED))
    return best, count


async def rate(broker: Broker, publish: Callable[[float], None], subscribers: int, count: int) -> float:
    subscriptions = [broker.subscribe([SIGNAL], access=UNRESTRICTED) for _ in range(subscribers)]

    async def drain(subscription: object) -> None:
        async for _ in subscription:  # type: ignore[attr-defined]
            pass

    readers = [asyncio.create_task(drain(subscription)) for subscription in subscriptions]
    started = time.perf_counter()
    for index in range(count):
        publish(float(index % 250))
        if index % 256 == 0:
            await asyncio.sleep(0)  # let the subscribers read, as a served loop would
    elapsed = time.perf_counter() - started
    for subscription in subscriptions:
        subscription.close()
    await asyncio.gather(*readers)
    return count / elapsed


# --- (c) over gRPC ----------------------------------------------------------------------------------------------
def provider_process(target: str, path: str, conn: Connection) -> None:
    """Claim ``path`` on a v2 provider stream and publish values until the parent says stop; sends the count."""
    conn.send(asyncio.run(_provide(target, path, conn)))


async def _provide(target: str, path: str, conn: Connection) -> int:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = VALStub(channel)
        listed = await stub.ListMetadata(val_pb2.ListMetadataRequest(root=path))
        signal_id = listed.metadata[0].id
        stream = stub.OpenProviderStream()
        claim = val_pb2.ProvideSignalRequest(signals_sample_intervals={signal_id: types_pb2.SampleInterval()})
        await stream.write(val_pb2.OpenProviderStreamRequest(provide_signal_request=claim))
        answer = await stream.read()
        if not answer.HasField("provide_signal_response"):
            raise RuntimeError(f"the claim of {path} was refused: {answer}")
        conn.send("claimed")
        sent = 0
        while not conn.poll():
            point = types_pb2.Datapoint(value=types_pb2.Value(float=float(sent % 250)))
            values = val_pb2.PublishValuesRequest(request_id=sent, data_points={signal_id: point})
            await stream.write(val_pb2.OpenProviderStreamRequest(publish_values_request=values))
            sent += 1
        await stream.done_writing()
        stream.cancel()
        return sent


async def measured(
    server: SdvServer, broker: Broker, subscribers: int, warmup: float, window: float
) -> tuple[float, dict[str, Any]]:
    """Run a subscriber process of :data:`SIGNAL`; the updates/s published meanwhile and its result."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=subscriber_process, args=(server.target, [SIGNAL], subscribers, warmup, window, 0, child)
    )
    process.start()
    loop = asyncio.get_running_loop()
    if await loop.run_in_executor(None, parent.recv) != "start":
        raise RuntimeError("the subscriber process did not start")
    published, started = broker.updates_published, time.perf_counter()
    await loop.run_in_executor(None, parent.recv)  # "stop"
    rate = (broker.updates_published - published) / (time.perf_counter() - started)
    result: dict[str, Any] = await loop.run_in_executor(None, parent.recv)
    await loop.run_in_executor(None, process.join)
    return rate, result


async def hal_over_grpc(
    server: SdvServer, broker: Broker, subscribers: int, warmup: float, window: float
) -> tuple[float, dict[str, Any]]:
    stop = threading.Event()

    def feed() -> None:
        step = 0
        while not stop.is_set():
            broker.publish([SignalUpdate(SIGNAL, float(step % 250), time.time(), Status.VALID)])
            step += 1
            if step % 64 == 0:
                time.sleep(0)  # let the server's threads run, as a reader thread between frames would

    feeder = threading.Thread(target=feed, name="bench-hal-feeder")
    feeder.start()
    try:
        return await measured(server, broker, subscribers, warmup, window)
    finally:
        stop.set()
        feeder.join()


async def provider_over_grpc(
    server: SdvServer, broker: Broker, subscribers: int, warmup: float, window: float
) -> tuple[float, dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=provider_process, args=(server.target, SIGNAL, child))
    process.start()
    loop = asyncio.get_running_loop()
    try:
        if await loop.run_in_executor(None, parent.recv) != "claimed":
            raise RuntimeError("the provider process did not claim the signal")
        return await measured(server, broker, subscribers, warmup, window)
    finally:
        parent.send("stop")
        await loop.run_in_executor(None, parent.recv)  # its count
        await loop.run_in_executor(None, process.join)


async def over_grpc(vss: Path, counts: list[int], warmup: float, window: float) -> None:
    broker = Broker.from_catalogue(load_catalogue([vss]))
    print(
        f"(c) over gRPC, {SIGNAL} of the {len(broker.list_metadata(access=UNRESTRICTED))} signals of {vss.name}:"
    )
    print(f"    {'subscribers':>11} {'path':>9} {'published/s':>12} {'delivered/s each':>17} {'ratio':>6}")
    async with SdvServer(broker, port=0) as server:
        for subscribers in counts:
            rows = [
                ("HAL", await hal_over_grpc(server, broker, subscribers, warmup, window)),
                ("provider", await provider_over_grpc(server, broker, subscribers, warmup, window)),
            ]
            baseline = rows[0][1][0]
            for name, (rate, result) in rows:
                counts = result["counts"]
                delivered = f"{statistics.fmean(counts) / result['elapsed']:,.0f}" if counts else "-"
                print(
                    f"    {subscribers:>11} {name:>9} {rate:>12,.0f} {delivered:>17} {rate / baseline:>6.2f}"
                )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vss", type=Path, default=Path("../shared/vss/vss_release_4.0.json"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--window", type=float, default=3.0, help="(c): seconds measured per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="(c): seconds before measuring")
    args = parser.parse_args()
    seconds, signals = load_seconds(args.vss, args.repeat)
    print(f"load: {signals} signals of {args.vss.name} in {seconds * 1000:.1f} ms (best of {args.repeat})")
    broker = Broker.from_catalogue(load_catalogue([args.vss]))

    def hal(value: float) -> None:
        broker.publish([SignalUpdate(SIGNAL, value, time.time(), Status.VALID)])

    def provider(value: float) -> None:
        broker.publish_value(SIGNAL, value, access=UNRESTRICTED)

    for subscribers in (1, 10):
        baseline = await rate(broker, hal, subscribers, args.count)
        provided = await rate(broker, provider, subscribers, args.count)
        print(
            f"{subscribers:>2} subscriber(s): HAL path {baseline:,.0f} updates/s, provider path "
            f"{provided:,.0f} updates/s (ratio {provided / baseline:.2f})"
        )
    await over_grpc(args.vss, [0, 1, 10], args.warmup, args.window)


if __name__ == "__main__":
    asyncio.run(main())
