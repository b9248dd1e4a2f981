"""Server memory under a flood of actuations to a provider that claims an actuator and never reads its stream.

``sdv serve --vss`` runs as its own process (every catalogue leaf open to outside providers). A provider opens
``OpenProviderStream``, claims one actuator with ``ProvideActuationRequest`` and then reads nothing; clients send
``--actuations`` Actuate requests to that actuator, ``--concurrency`` at a time. The server's RSS is printed
before the provider connects, after the flood, and after the provider disconnected, with how the requests ended
(accepted once queued, refused ``RESOURCE_EXHAUSTED`` by the bound on queued requests, ...).

Prints figures; no pass/fail. The bound is asserted by tests/security/test_stalled_provider.py on the count of
queued requests, not here on RSS (RSS also holds the allocator's high-water mark).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from sdv._proto.kuksa.val.v2 import types_pb2, val_pb2, val_pb2_grpc

REPOSITORY = Path(__file__).resolve().parents[1]
ACTUATOR = "Vehicle.Body.Lights.Beam.Low.IsOn"
_LISTENING = re.compile(r"^sdv serve: listening on [^ ]+:(\d+)$")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def flood(target: str, actuations: int, concurrency: int) -> collections.Counter[str]:
    outcomes: collections.Counter[str] = collections.Counter()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = val_pb2_grpc.VALStub(channel)
        request = val_pb2.ActuateRequest(
            signal_id=types_pb2.SignalID(path=ACTUATOR), value=types_pb2.Value(bool=True)
        )
        remaining = iter(range(actuations))

        async def worker() -> None:
            for _ in remaining:
                try:
                    await stub.Actuate(request, timeout=30)
                    outcomes["OK"] += 1
                except grpc.aio.AioRpcError as error:
                    outcomes[error.code().name] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


async def measure(target: str, pid: int, actuations: int, concurrency: int, rounds: int) -> None:
    print(f"RSS before the provider:            {rss_mib(pid):7.1f} MiB")
    for round_ in range(rounds):
        print(f"round {round_ + 1}:")
        await one_round(target, pid, actuations, concurrency)
    outcomes = await flood(target, 10, 1)
    print(f"afterwards 10 actuations end:       {dict(outcomes)}")


async def one_round(target: str, pid: int, actuations: int, concurrency: int) -> None:
    """A provider that claims the actuator and stalls, a flood, and the provider's disconnect."""
    channel = grpc.aio.insecure_channel(target)
    provider = val_pb2_grpc.VALStub(channel).OpenProviderStream()
    claim = val_pb2.ProvideActuationRequest(actuator_identifiers=[types_pb2.SignalID(path=ACTUATOR)])
    await provider.write(val_pb2.OpenProviderStreamRequest(provide_actuation_request=claim))
    await provider.read()  # the claim's answer; nothing is read after it
    started = time.monotonic()
    outcomes = await flood(target, actuations, concurrency)
    elapsed = time.monotonic() - started
    print(
        f"RSS after {actuations} actuations:     {rss_mib(pid):7.1f} MiB  ({elapsed:.1f} s; {dict(outcomes)})"
    )
    provider.cancel()
    await channel.close()
    await asyncio.sleep(2)
    print(f"RSS 2 s after the provider left:    {rss_mib(pid):7.1f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    releases = (parent / "shared" / "vss" / "vss_release_4.0.json" for parent in REPOSITORY.parents)
    parser.add_argument(
        "--vss",
        type=Path,
        default=next((release for release in releases if release.is_file()), None),
        help="VSS release JSON (default: shared/vss/vss_release_4.0.json next to the repository)",
    )
    parser.add_argument("--actuations", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument(
        "--rounds", type=int, default=2, help="a memory high-water mark is reused by later rounds"
    )
    parser.add_argument("--max-pending", type=int, default=1000, help="Limits.max_pending_actuations")
    parser.add_argument(
        "--await-answer", action="store_true", help="await_provider_answer: true (each waits 5 s)"
    )
    args = parser.parse_args()
    if args.vss is None:
        parser.error("no VSS release found next to the repository; give --vss")
    with tempfile.TemporaryDirectory() as directory:
        limits = Path(directory) / "limits.yaml"
        limits.write_text(
            f"await_provider_answer: {'true' if args.await_answer else 'false'}\nmax_concurrent_streams: 1000\n"
            f"max_pending_actuations: {args.max_pending}\n"
        )
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sdv.cli.main",
                "serve",
                "--port",
                "0",
                "--vss",
                str(args.vss),
                "--limits",
                str(limits),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPOSITORY,
        )
        try:
            assert process.stdout is not None
            match = _LISTENING.match(process.stdout.readline().strip())
            if match is None:
                print("sdv serve did not start", file=sys.stderr)
                return 1
            asyncio.run(
                measure(f"127.0.0.1:{match[1]}", process.pid, args.actuations, args.concurrency, args.rounds)
            )
        finally:
            process.terminate()
            process.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
