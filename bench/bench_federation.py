"""Federation over Eclipse Zenoh: ECU-to-ECU latency and throughput against the local gRPC path, and detection times.

Two ``sdv serve`` processes on loopback, ECU a and ECU b of one vehicle (``federation:`` sections, zenoh over
TCP). ECU a owns the bench signals through an outside provider (``federation.provides``); ECU b mirrors them.
The provider (this process) publishes on a's gRPC API (``kuksa.val.v2`` ``OpenProviderStream``); a subscriber in a
process of its own subscribes over gRPC:

* **federated**: the subscriber on ECU b (provider → a's broker → zenoh → b's broker → subscriber);
* **local** (the baseline, in the same run): the subscriber on ECU a itself (provider → a's broker → subscriber).

(a) Latency: one ``double`` signal published at each of ``--rates`` values/s (200: every value reaches the
    subscriber; 1,000: the rate of the reference figures, at which a subscriber is sent only the latest value of
    what changed since its previous response), each value the provider's monotonic clock (system-wide on Linux);
    the subscriber records ``receipt - value``; p50, p99, max, and how many of the values published it received.
(b) Throughput: ``--signals`` float signals, every one changed in each ``PublishValuesRequest``, as fast as the
    stream takes them for ``--window`` s; updates received per second (a subscriber gets the latest value of each
    signal that changed since its previous response, so received can be fewer than published).
(c) Detection, seen by a client subscribed on ECU b, with ``lease_ms`` from ``--lease-ms``:
    * ECU a SIGKILLed: time until b reports a's signals not available (the liveliness token goes with the
      session's TCP connections);
    * ECU a partitioned: with root and network namespaces, a's veth link is taken down (the test network of
      ``tests/federation``); without root, a is stopped with SIGSTOP, its connections open and silent, which b
      can tell from a partition only by the lease — both are reported under their own name;
    * after each, the time until a is back on b (restart, or the link up again), values resynchronised.

Prints a table; no pass/fail. Run: ``.venv/bin/python bench/bench_federation.py`` (about a minute and a half).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ helpers, when run as a script

from tests.federation.ecus import Ecu
from tests.federation.network import Loopback, Namespaces, namespaces_unavailable
from tests.federation.timing import all_available, all_unavailable, seconds_until, wait_for

from sdv._proto.kuksa.val.v2 import types_pb2, val_pb2
from sdv.client import VehicleClient

VEHICLE = "benchcar"
LATENCY = "Vehicle.Private.Bench.Latency"
ROOT = "Vehicle.Private.Bench"
HEARTBEAT = "Vehicle.Private.Bench.Heartbeat"
DBC = 'VERSION ""\n\nNS_ :\n\nBS_:\n\nBU_: A\n\nBO_ 256 Beat: 8 A\n SG_ Beat : 0|8@1+ (1,0) [0|255] "" Vector__XXX\n'


def load_paths(count: int) -> list[str]:
    """The throughput signals."""
    return [f"{ROOT}.Load.S{index:04d}" for index in range(count)]


# --- the vehicle ---------------------------------------------------------------------------------------------
def write_profiles(directory: Path, network: Any, signals: int, lease_ms: int) -> dict[str, Path]:
    """ECU a and b's profiles: the bench signals ``provided_by: external``, provided on a, mirrored on b; the
    heartbeat decoded on a from a looping recording (50 values/s), mirrored on b."""
    dbc = directory / "bench.dbc"
    dbc.write_text(DBC)
    recording = directory / "a.log"
    recording.write_text(
        "".join(f"({1767225600 + step * 0.02:.6f}) can0 100#{step:02X}00000000000000\n" for step in range(50))
    )
    entries = [{"path": LATENCY, "kind": "sensor", "datatype": "double", "provided_by": "external"}]
    entries += [
        {"path": path, "kind": "sensor", "datatype": "float", "provided_by": "external"}
        for path in load_paths(signals)
    ]
    profiles = {}
    for ecu, other in (("a", "b"), ("b", "a")):
        federation: dict[str, Any] = {
            "vehicle": VEHICLE,
            "ecu": ecu,
            "listen": [network.endpoint(ecu)],
            "peers": [network.endpoint(other)],
            "lease_ms": lease_ms,
        }
        if ecu == "a":
            federation["provides"] = [ROOT]
        bus: dict[str, Any] = {"name": "body", "dbc": [str(dbc)]}
        heartbeat: dict[str, Any] = {"path": HEARTBEAT, "kind": "sensor", "datatype": "uint8"}
        if ecu == "a":
            bus["recording"] = {"file": str(recording), "loop": True}
            heartbeat["source"] = {"bus": "body", "message": "Beat", "signal": "Beat"}
        else:
            bus.update(interface="virtual", channel=f"bench-{ecu}")
            heartbeat["provided_by"] = "external"
        document = {
            "name": f"benchcar-{ecu}",
            "buses": [bus],
            "signals": [heartbeat, *entries],
            "federation": federation,
        }
        profiles[ecu] = directory / f"{ecu}.yaml"
        profiles[ecu].write_text(yaml.safe_dump(document, sort_keys=False))
    return profiles


def target(ecu: Ecu) -> str:
    return f"{ecu.address}:{ecu.port}"


# --- the provider (this process) -----------------------------------------------------------------------------
class Provider:
    """One ``OpenProviderStream`` on ECU a that claims the bench signals and publishes what :meth:`run` yields.

    The requests are an async generator that gRPC pulls as the stream can send them, so a fast publisher is held
    back by the stream's flow control instead of queueing without bound.
    """

    def __init__(self, client: VehicleClient, ids: dict[str, int]) -> None:
        self._client = client
        self._ids = ids

    @classmethod
    async def connect(cls, client: VehicleClient, paths: Sequence[str]) -> Provider:
        return cls(client, {path: (await client.metadata(path)).id for path in paths})

    def request(self, values: dict[str, float]) -> val_pb2.OpenProviderStreamRequest:
        publish = val_pb2.PublishValuesRequest(request_id=1)
        for path, value in values.items():
            datapoint = publish.data_points[self._ids[path]]
            if path == LATENCY:
                datapoint.value.double = value
            else:
                datapoint.value.float = value
        return val_pb2.OpenProviderStreamRequest(publish_values_request=publish)

    async def run(self, requests: AsyncIterator[val_pb2.OpenProviderStreamRequest]) -> None:
        """Claim every signal, then send ``requests`` until they end; the claim ends with the stream."""

        async def stream() -> AsyncIterator[val_pb2.OpenProviderStreamRequest]:
            claim = val_pb2.ProvideSignalRequest(
                signals_sample_intervals={
                    signal_id: types_pb2.SampleInterval() for signal_id in self._ids.values()
                }
            )
            yield val_pb2.OpenProviderStreamRequest(provide_signal_request=claim)
            async for request in requests:
                yield request

        call = self._client.stub.OpenProviderStream(stream())
        with contextlib.suppress(Exception):  # the server going away (a killed ECU) ends it too
            async for response in call:
                if response.WhichOneof("action") == "publish_values_response":
                    status = response.publish_values_response.status
                    raise SystemExit(f"the server refused values: {dict(status)}")
        call.cancel()


async def paced(provider: Provider, rate: float, until: Callable[[], bool]) -> AsyncIterator[Any]:
    """The latency signal at ``rate`` values/s, each its publication time, until ``until()``."""
    period, started, index = 1 / rate, time.monotonic(), 0
    while not until():
        index += 1
        await asyncio.sleep(max(0.0, started + index * period - time.monotonic()))
        yield provider.request({LATENCY: time.monotonic()})


async def flooding(
    provider: Provider, paths: Sequence[str], until: Callable[[], bool], sent: list[int]
) -> AsyncIterator[Any]:
    """Every throughput signal changed in each request, as fast as the stream takes them."""
    step = 0
    while not until():
        step += 1
        yield provider.request({path: float(step % 1000 + index) for index, path in enumerate(paths)})
        sent[0] += len(paths)


# --- the subscriber process ----------------------------------------------------------------------------------
def subscriber_process(
    address: str, mode: str, paths: Sequence[str], window: float, conn: Connection
) -> None:
    """Subscribe to ``paths`` on ``address``; say ``ready`` after the first response; measure for ``window`` s."""
    conn.send(asyncio.run(_subscribe(address, mode, paths, window, conn)))


async def _subscribe(
    address: str, mode: str, paths: Sequence[str], window: float, conn: Connection
) -> dict[str, Any]:
    latencies: list[float] = []
    received = 0
    async with VehicleClient(address) as client:
        stream = client.subscribe(paths)
        async with contextlib.aclosing(stream):
            await anext(stream)  # the current values
            conn.send("ready")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(window):
                    async for batch in stream:
                        now = time.monotonic()
                        if mode == "latency":
                            latencies.extend(
                                now - dp.value for dp in batch.values() if isinstance(dp.value, float)
                            )
                        else:
                            received += len(batch)
    return {"latencies": latencies, "received": received, "window": window}


async def measure(
    address: str, mode: str, paths: Sequence[str], window: float, publish: Callable[[Callable[[], bool]], Any]
) -> dict[str, Any]:
    """Start a subscriber on ``address``, publish while it measures (``publish(until)``), return its figures."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(
        target=subscriber_process, args=(address, mode, paths, window, child), daemon=True
    )
    process.start()
    await asyncio.to_thread(parent.recv)  # "ready"
    ends = time.monotonic() + window + 0.2
    await publish(lambda: time.monotonic() > ends)
    result: dict[str, Any] = await asyncio.to_thread(parent.recv)
    process.join(30)
    return result


# --- runs ----------------------------------------------------------------------------------------------------
def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def wait_mirrored(b: Ecu, paths: Sequence[str]) -> None:
    """Until b has a value of every one of ``paths`` (ECU a joined and was synchronised)."""
    async with VehicleClient(target(b)) as client:
        await wait_for(client, paths, all_available(paths))


async def latency_and_throughput(a: Ecu, b: Ecu, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    loads = load_paths(args.signals)
    results: dict[str, dict[str, Any]] = {}
    async with VehicleClient(target(a)) as client:
        provider = await Provider.connect(client, [LATENCY, *loads])
        seed = asyncio.create_task(provider.run(paced(provider, 10, lambda: False)))
        await wait_mirrored(b, [LATENCY])
        seed.cancel()
        await asyncio.gather(seed, return_exceptions=True)
        for name, ecu in (("local gRPC (a → a)", a), ("federated (a → zenoh → b)", b)):
            latencies = {}
            for rate in args.rates:
                publish = functools.partial(
                    lambda rate, until: provider.run(paced(provider, rate, until)), rate
                )
                latency = await measure(target(ecu), "latency", [LATENCY], args.window, publish)
                latencies[rate] = latency["latencies"]
            sent = [0]
            flood = functools.partial(
                lambda sent, until: provider.run(flooding(provider, loads, until, sent)), sent
            )
            throughput = await measure(target(ecu), "throughput", loads, args.window, flood)
            results[name] = {
                "latencies": latencies,
                "received": throughput["received"] / args.window,
                "sent": sent[0] / (args.window + 0.2),
            }
    return results


async def detection(a: Ecu, b: Ecu, network: Any, rounds: int) -> dict[str, list[float]]:
    """SIGKILL a, then partition a, ``rounds`` times each; how long until b notices, and until a is back."""
    watched = [HEARTBEAT]
    gone, back = all_unavailable(watched), all_available(watched)
    partition = "partition (link down)" if isinstance(network, Namespaces) else "silent peer (SIGSTOP)"
    figures: dict[str, list[float]] = {
        "kill": [],
        "back after restart": [],
        partition: [],
        "back after heal": [],
    }
    async with VehicleClient(target(b)) as client:
        await wait_for(client, watched, back)
        for _ in range(rounds):
            figures["kill"].append(await seconds_until(client, watched, gone, a.kill, 60))
            figures["back after restart"].append(await seconds_until(client, watched, back, a.start, 60))
        assert a.process is not None
        process = a.process
        for _ in range(rounds):
            cut = await seconds_until(client, watched, gone, lambda: network.partition("a", process), 60)
            figures[partition].append(cut)
            healed = await seconds_until(client, watched, back, lambda: network.heal("a", process), 60)
            figures["back after heal"].append(healed)
    return figures


async def run(network: Any, args: argparse.Namespace, directory: Path, where: str) -> None:
    """Start ECU a and b on ``network``, measure, print, stop them."""
    profiles = write_profiles(directory, network, args.signals, args.lease_ms)
    ecus = {name: Ecu(name, profile, network) for name, profile in profiles.items()}
    try:
        for ecu in ecus.values():
            ecu.start()
        a, b = ecus["a"], ecus["b"]
        if not args.detection_only:
            report(await latency_and_throughput(a, b, args), {}, args, where)
        report({}, await detection(a, b, network, args.rounds), args, where)
    finally:
        for ecu in ecus.values():
            ecu.stop()


def report(
    paths: dict[str, dict[str, Any]], detected: dict[str, list[float]], args: argparse.Namespace, where: str
) -> None:
    """Print the latency and throughput table (``paths``) or the detection table."""
    if paths:
        local, federated = paths.values()
        print(f"\nECU-to-ECU latency over zenoh vs. the local gRPC path ({args.window:g} s per rate)")
        print(f"{'path':28} {'values/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'received':>9}")
        for rate in args.rates:
            for name, figures in paths.items():
                ms = [value * 1000 for value in figures["latencies"][rate]]
                share = len(ms) / (rate * args.window)
                print(
                    f"{name:28} {rate:8.0f} {percentile(ms, 0.5):8.2f} {percentile(ms, 0.99):8.2f} "
                    f"{max(ms, default=float('nan')):8.2f} {share:9.0%}"
                )
            ours, theirs = federated["latencies"][rate], local["latencies"][rate]
            p50 = percentile(ours, 0.5) / percentile(theirs, 0.5)
            p99 = percentile(ours, 0.99) / percentile(theirs, 0.99)
            print(f"{'  ratio federated / local':28} {rate:8.0f} {p50:8.2f} {p99:8.2f}")
        print(f"\nThroughput: {args.signals} signals changed per request, {args.window:g} s")
        print(f"{'path':28} {'sent/s':>10} {'received/s':>11}")
        for name, figures in paths.items():
            print(f"{name:28} {figures['sent']:10.0f} {figures['received']:11.0f}")
        ratio = federated["received"] / local["received"] if local["received"] else float("nan")
        print(f"{'  ratio federated / local':28} {'':10} {ratio:11.2f}")
    if not detected:
        return
    print(f"\nDetection seen on ECU b ({where}; lease_ms {args.lease_ms}, {args.rounds} rounds; ms)")
    print(f"{'event':28} {'min':>8} {'median':>8} {'max':>8}")
    for name, values in detected.items():
        ms = [value * 1000 for value in values]
        print(f"{name:28} {min(ms):8.0f} {statistics.median(ms):8.0f} {max(ms):8.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates", type=lambda text: [float(rate) for rate in text.split(",")], default=[200.0, 1000.0],
        help="latency: values per second, comma-separated (default 200,1000)",
    )  # fmt: skip
    parser.add_argument("--signals", type=int, default=100, help="throughput: signals per request")
    parser.add_argument("--window", type=float, default=4.0, help="seconds each measurement lasts")
    parser.add_argument("--lease-ms", type=int, default=1000, help="federation.lease_ms of both ECUs")
    parser.add_argument("--rounds", type=int, default=3, help="kills and partitions")
    parser.add_argument(
        "--namespaces", choices=("auto", "no"), default="auto",
        help="auto: also measure a real partition (link down) in network namespaces when run as root",
    )  # fmt: skip
    parser.add_argument("--detection-only", action="store_true", help="skip latency and throughput")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-federation-") as temporary:
        directory = Path(temporary)
        (directory / "loopback").mkdir()
        asyncio.run(run(Loopback(), args, directory / "loopback", "loopback"))
        reason = namespaces_unavailable() if args.namespaces == "auto" else "--namespaces no"
        if reason is not None:
            print(f"\nno real partition measured ({reason}): the SIGSTOP figures stand for it")
            return
        (directory / "namespaces").mkdir()
        detection_only = argparse.Namespace(**{**vars(args), "detection_only": True})
        network = Namespaces()
        try:
            where = "network namespaces joined by veth pairs"
            asyncio.run(run(network, detection_only, directory / "namespaces", where))
        finally:
            network.close()


if __name__ == "__main__":
    main()
