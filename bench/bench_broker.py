"""Broker and gRPC server: updates delivered to subscribers, and latency from frame to subscriber.

The server process (this one) runs the HAL, the broker and the gRPC server (``kuksa.val.v2``) on 127.0.0.1, as
``sdv serve`` does; subscribers run in a separate process with ``grpc.aio`` and the generated v2 stubs, as apps
would. The demo drive with the demo profile is the vehicle.

(a) Throughput: the HAL replays the demo drive as fast as it can, looping. Baseline: the signal updates per
    second the HAL hands the broker with no subscriber. Then 1, 10 and 50 subscribers of every signal (v2
    Subscribe); after a warm-up, every entry of every response is counted over a fixed window. A subscriber
    receives the latest value of each signal that changed since its previous response (older ones are
    superseded), so updates delivered can be fewer than updates produced; the ratio says how many get through.
(a') Capacity of the broker and gRPC path without the demo's limit: the demo drive has 41 signals and only about 15
    change between two responses, so what one subscriber can receive is bounded by the data, not the server. A
    feeder thread publishes every one of ``--capacity-signals`` float sensors, all changed, every millisecond (as
    a provider would), to 1, 10 and 50 subscribers of all of them.
(c) CPU per frame: the replay paced at 1,000 and 8,000 frames/s with 0, 1 and 10 subscribers of every signal;
    this process's CPU time (every thread: HAL, broker, gRPC) over the window, as % of one core and µs per
    frame, with p50/p99 latency, next to a bare cantools decode of the same frames in the same run.
(b) Latency: the replay is paced at a fixed frame rate (8,000 frames/s: one saturated 1 Mbit/s bus), each frame
    stamped with its scheduled arrival time and released by a 1 ms poll (as a driver would batch); 10
    subscribers of every signal record ``receipt time - frame timestamp`` for every entry; p50, p99 and max.

Prints figures; no pass/fail. Targets: at least 100,000 updates/s to one subscriber; p99 at most 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import multiprocessing
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any

import can
import grpc

from sdv._proto.kuksa.val.v2 import val_pb2
from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALStub
from sdv.api.server import SdvServer
from sdv.broker import Broker
from sdv.broker.access import UNRESTRICTED
from sdv.hal.processor import SignalUpdate, Status
from sdv.hal.runtime import Hal
from sdv.hal.sources import FrameSource, RecordingSource
from sdv.hal.vehicle import VehicleDefinition, load_vehicle
from sdv.resources import demo_profile, demo_recording
from sdv.types.signals import SignalMetadata

POLL_SECONDS = 0.001


# --- subscriber process ----------------------------------------------------------------------------------------
def subscriber_process(
    target: str,
    paths: Sequence[str],
    subscribers: int,
    warmup: float,
    window: float,
    timed: int,
    conn: Connection,
) -> None:
    """Open ``subscribers`` v2 subscriptions; after ``warmup`` count entries for ``window`` s, and the latency from
    each datapoint's timestamp to its receipt for the first ``timed`` subscribers."""
    conn.send(asyncio.run(_subscribe(target, paths, subscribers, warmup, window, timed, conn)))


async def _subscribe(
    target: str,
    paths: Sequence[str],
    subscribers: int,
    warmup: float,
    window: float,
    timed: int,
    conn: Connection,
) -> dict[str, Any]:
    counts = [0] * subscribers
    responses = [0] * subscribers
    latencies: list[float] = []
    measuring = [False]
    request = val_pb2.SubscribeRequest(signal_paths=list(paths))
    async with grpc.aio.insecure_channel(target) as channel:
        stub = VALStub(channel)

        async def one(index: int) -> None:
            async for response in stub.Subscribe(request):
                if not measuring[0]:
                    continue
                counts[index] += len(response.entries)
                responses[index] += 1
                if index < timed:
                    now = time.time()
                    for entry in response.entries.values():
                        stamp = entry.timestamp
                        if stamp.seconds:  # a signal without a value has no timestamp
                            latencies.append(now - (stamp.seconds + stamp.nanos / 1e9))

        tasks = [asyncio.create_task(one(index)) for index in range(subscribers)]
        await asyncio.sleep(warmup)
        measuring[0] = True
        conn.send("start")
        start = time.perf_counter()
        await asyncio.sleep(window)
        measuring[0] = False
        elapsed = time.perf_counter() - start
        conn.send("stop")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"counts": counts, "responses": responses, "elapsed": elapsed, "latencies": latencies}


# --- server side -----------------------------------------------------------------------------------------------
class PacedSource(FrameSource):
    """Releases another source's frames at a fixed rate, each stamped with its scheduled arrival time."""

    realtime = True

    def __init__(self, inner: FrameSource, frames_per_second: float) -> None:
        self.name = inner.name
        self.inner = inner
        self.frames_per_second = frames_per_second
        self.released = 0
        self.start: float | None = None
        self._ahead: collections.deque[can.Message] = collections.deque()

    def receive(self, timeout: float) -> list[can.Message]:
        time.sleep(POLL_SECONDS)
        now = time.time()
        if self.start is None:
            self.start = now
        due = min(int((now - self.start) * self.frames_per_second) - self.released, 512)
        frames = []
        for _ in range(max(due, 0)):
            if not self._ahead:
                self._ahead.extend(self.inner.receive(0.0))
            frame = self._ahead.popleft()
            frame.timestamp = self.start + self.released / self.frames_per_second
            self.released += 1
            frames.append(frame)
        return frames

    def send(self, frame: can.Message) -> None:
        self.inner.send(frame)

    def close(self) -> None:
        self.inner.close()


def demo_source(name: str) -> RecordingSource:
    return RecordingSource(name, demo_recording(), realtime=False, loop=True)


async def run_subscribers(
    server: SdvServer, broker: Broker, subscribers: int, warmup: float, window: float, latency: bool
) -> tuple[dict[str, Any], float]:
    """Run a subscriber process; returns its result and the updates/s the HAL produced meanwhile."""
    paths = [meta.path for meta in broker.list_metadata(access=UNRESTRICTED)]
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=subscriber_process,
        args=(server.target, paths, subscribers, warmup, window, subscribers if latency else 0, child),
    )
    process.start()
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(None, parent.recv) == "start"
    published, started = broker.updates_published, time.perf_counter()
    assert await loop.run_in_executor(None, parent.recv) == "stop"
    produced = (broker.updates_published - published) / (time.perf_counter() - started)
    result: dict[str, Any] = await loop.run_in_executor(None, parent.recv)
    await loop.run_in_executor(None, process.join)
    return result, produced


async def throughput(vehicle: VehicleDefinition, counts: Sequence[int], warmup: float, window: float) -> None:
    broker = Broker.from_vehicle(vehicle)
    hal = Hal(vehicle, sources={name: demo_source(name) for name in vehicle.buses})
    hal.start(broker.publish)
    try:
        async with SdvServer(broker, port=0) as server:
            await asyncio.sleep(warmup)
            published, started = broker.updates_published, time.perf_counter()
            await asyncio.sleep(window)
            baseline = (broker.updates_published - published) / (time.perf_counter() - started)
            print(
                f"(a) throughput: HAL replaying the demo drive as fast as it can, {len(vehicle.signals)} signals"
            )
            print(f"    baseline, no subscriber: the HAL produces {baseline:,.0f} updates/s")
            rows = []
            for subscribers in counts:
                result, produced = await run_subscribers(server, broker, subscribers, warmup, window, False)
                rows.append((subscribers, result, produced))
            print_runs(baseline, rows)
    finally:
        hal.stop()


def print_runs(baseline: float, rows: list[tuple[int, dict[str, Any], float]]) -> None:
    print(
        f"    {'subscribers':>11} {'offered/s':>12} {'per subscriber/s':>17} {'all subscribers/s':>18}"
        f" {'entries/response':>17} {'ratio':>6}"
    )
    for subscribers, result, produced in rows:
        per_subscriber = statistics.fmean(result["counts"]) / result["elapsed"]
        total = sum(result["counts"]) / result["elapsed"]
        per_response = sum(result["counts"]) / max(1, sum(result["responses"]))
        print(
            f"    {subscribers:>11} {produced:>12,.0f} {per_subscriber:>17,.0f} {total:>18,.0f}"
            f" {per_response:>17.1f} {per_subscriber / baseline:>6.2f}"
        )


def float_sensors(signals: int) -> list[SignalMetadata]:
    """``signals`` float sensors ``Bench.Signal0`` ... for the capacity runs."""
    return [
        SignalMetadata(id=index + 1, path=f"Bench.Signal{index}", kind="sensor", datatype="float")
        for index in range(signals)
    ]


@contextlib.contextmanager
def feeding(broker: Broker, paths: Sequence[str]) -> Iterator[None]:
    """A feeder thread publishing every one of ``paths``, all changed, every ``POLL_SECONDS``, as a provider would."""
    stop = threading.Event()

    def feed() -> None:
        step = 0
        while not stop.is_set():
            step += 1
            now = time.time()
            broker.publish(
                [
                    SignalUpdate(path, float(step + index), now, Status.VALID)
                    for index, path in enumerate(paths)
                ]
            )
            time.sleep(POLL_SECONDS)

    feeder = threading.Thread(target=feed, name="bench-feeder")
    feeder.start()
    try:
        yield
    finally:
        stop.set()
        feeder.join()


async def capacity(signals: int, counts: Sequence[int], warmup: float, window: float) -> None:
    metadata = float_sensors(signals)
    broker = Broker(metadata)
    with feeding(broker, [meta.path for meta in metadata]):
        async with SdvServer(broker, port=0) as server:
            await asyncio.sleep(warmup)
            published, started = broker.updates_published, time.perf_counter()
            await asyncio.sleep(window)
            baseline = (broker.updates_published - published) / (time.perf_counter() - started)
            print(
                f"(a') capacity: {signals:,} float sensors, all changed every {POLL_SECONDS * 1000:g} ms by a feeder thread"
            )
            print(f"    baseline, no subscriber: {baseline:,.0f} updates/s published")
            rows = []
            for subscribers in counts:
                result, produced = await run_subscribers(server, broker, subscribers, warmup, window, False)
                rows.append((subscribers, result, produced))
            print_runs(baseline, rows)


async def latency(
    vehicle: VehicleDefinition, frames_per_second: float, subscribers: int, warmup: float, window: float
) -> None:
    broker = Broker.from_vehicle(vehicle)
    sources = {name: PacedSource(demo_source(name), frames_per_second) for name in vehicle.buses}
    hal = Hal(vehicle, sources=sources)
    hal.start(broker.publish)
    try:
        async with SdvServer(broker, port=0) as server:
            await asyncio.sleep(0.5)
            released, started = sum(source.released for source in sources.values()), time.perf_counter()
            result, produced = await run_subscribers(server, broker, subscribers, warmup, window, True)
            elapsed = time.perf_counter() - started
            rate = (sum(source.released for source in sources.values()) - released) / elapsed
    finally:
        hal.stop()
    samples = sorted(result["latencies"])
    if not samples:
        print("(b) latency: no update received")
        return

    def quantile(fraction: float) -> float:
        return samples[min(len(samples) - 1, int(fraction * len(samples)))] * 1000

    print(
        f"(b) latency at {frames_per_second:,.0f} frames/s (achieved {rate:,.0f}), {subscribers} subscribers of every"
        f" signal, {len(samples):,} entries over {result['elapsed']:.1f} s ({produced:,.0f} HAL updates/s):"
    )
    print(f"    p50 {quantile(0.5):.2f} ms   p99 {quantile(0.99):.2f} ms   max {samples[-1] * 1000:.2f} ms")


def _bare_decode_us(vehicle: VehicleDefinition, frames: int = 20_000) -> float:
    """CPU µs per frame of cantools' decode_message over the demo drive's frames (the baseline)."""
    databases = [dbc.database for bus in vehicle.buses.values() for dbc in bus.dbcs]
    known = {message.frame_id: (database, message) for database in databases for message in database.messages}
    source = demo_source(next(iter(vehicle.buses)))
    sample: list[can.Message] = []
    while len(sample) < frames:
        sample.extend(frame for frame in source.receive(0.0) if frame.arbitration_id in known)
    started = time.process_time()
    for frame in sample:
        database, message = known[frame.arbitration_id]
        try:
            database.decode_message(message.frame_id, bytes(frame.data)[: message.length])
        except Exception:
            continue
    return (time.process_time() - started) / len(sample) * 1e6


async def cpu_per_frame(
    vehicle: VehicleDefinition, rates: Sequence[float], counts: Sequence[int], warmup: float, window: float
) -> None:
    bare = _bare_decode_us(vehicle)
    print(f"(c) CPU per frame, paced replay; baseline: bare cantools decode {bare:.1f} µs/frame")
    print(
        f"    {'frames/s':>9} {'subscribers':>11} {'CPU % core':>10} {'µs/frame':>9} {'x bare':>7} {'p50 ms':>7} {'p99 ms':>7}"
    )
    for rate in rates:
        for subscribers in counts:
            broker = Broker.from_vehicle(vehicle)
            sources = {name: PacedSource(demo_source(name), rate) for name in vehicle.buses}
            hal = Hal(vehicle, sources=sources)
            hal.start(broker.publish)
            try:
                async with SdvServer(broker, port=0) as server:
                    await asyncio.sleep(warmup)
                    released = sum(source.released for source in sources.values())
                    cpu, started = time.process_time(), time.perf_counter()
                    if subscribers:
                        result, _ = await run_subscribers(server, broker, subscribers, warmup, window, True)
                    else:
                        await asyncio.sleep(warmup + window)
                        result = {"latencies": []}
                    elapsed = time.perf_counter() - started
                    used = time.process_time() - cpu
                    frames = sum(source.released for source in sources.values()) - released
            finally:
                hal.stop()
            samples = sorted(result["latencies"])
            p50 = f"{samples[len(samples) // 2] * 1000:7.2f}" if samples else "      -"
            p99 = (
                f"{samples[min(len(samples) - 1, int(0.99 * len(samples)))] * 1000:7.2f}"
                if samples
                else "      -"
            )
            per_frame = used / max(frames, 1) * 1e6
            print(
                f"    {rate:>9,.0f} {subscribers:>11} {used / elapsed * 100:>10.1f} {per_frame:>9.1f}"
                f" {per_frame / bare:>7.1f} {p50} {p99}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 10, 50], help="throughput runs")
    parser.add_argument("--window", type=float, default=3.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    parser.add_argument("--capacity-signals", type=int, default=1000, help="signals of the capacity runs")
    parser.add_argument("--frames-per-second", type=float, default=8000.0, help="paced rate for latency")
    parser.add_argument("--latency-subscribers", type=int, default=10)
    parser.add_argument("--cpu-only", action="store_true", help="only the CPU-per-frame runs (c)")
    args = parser.parse_args()
    vehicle = load_vehicle(demo_profile())
    asyncio.run(cpu_per_frame(vehicle, (1000.0, 8000.0), (0, 1, 10), args.warmup, args.window))
    if args.cpu_only:
        return
    asyncio.run(throughput(vehicle, args.subscribers, args.warmup, args.window))
    asyncio.run(capacity(args.capacity_signals, args.subscribers, args.warmup, args.window))
    asyncio.run(latency(vehicle, args.frames_per_second, args.latency_subscribers, args.warmup, args.window))


if __name__ == "__main__":
    main()
