"""Benchmark: staging a bundle into an image slot runs near the speed of a plain copy, in constant memory.

For each bundle size (default 64 MiB and 1 GiB, one slot-image payload), in a temporary directory:

* builds and signs the bundle with the ``sdv ota`` commands (threshold 2, as ``bench_ota_verify.py``);
* in a fresh child process: hands the bundle to an :class:`~sdv.ota.agent.core.UpdateAgent` (untimed, then
  ``sync``), then times a plain copy of the bundle file into an image file (``shutil.copyfileobj`` and
  ``fsync``, the same bytes from the page cache) and staging: signature checks, streaming the payload through SHA-256 into the
  inactive slot's image file and ``fsync``; ``--repeat`` rounds, interleaved. The child reports the best times, its peak resident set size
  (``resource.getrusage``) and the peak of Python allocations during staging (``tracemalloc``).

It prints MB/s for both, their ratio from the same run, and the memory figures per size, so it shows whether
memory grows with the bundle.

Push throughput (``--push-mib``, default 64 MiB): in a fresh child process an agent serves ``sdv.ota.v1.Ota`` on
127.0.0.1 (a real gRPC server, port 0) and :class:`~sdv.ota.client.OtaClient` pushes the bundle with 16 KiB and
1 MiB chunks (hashing the file, announcing the header, uploading, the agent's batched ``fsync``); each push is
timed against a local copy of the same file (``shutil.copyfileobj`` and ``fsync``) in the same round. The child
runs twice: with the default durability interval and with ``sync_interval_bytes: 0`` (an ``fsync`` and a
persisted offset after every chunk) for comparison.

Figures, not pass/fail: exit code 0 unless something failed.

    python bench/bench_ota_stage.py [--sizes MIB,MIB] [--push-mib MIB] [--repeat N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_ota_verify import build_bundle
from sdv.ota.agent.core import UpdateAgent

_MIB = 1024 * 1024


def _copy(source: Path, target: Path) -> float:
    """Seconds to copy ``source`` with ``shutil.copyfileobj`` into a new file and ``fsync`` it."""
    start = time.perf_counter()
    with source.open("rb") as reader, target.open("wb") as writer:
        shutil.copyfileobj(reader, writer, 1024 * 1024)
        writer.flush()
        os.fsync(writer.fileno())
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


def _stage(agent: UpdateAgent) -> float:
    """Seconds the agent takes to verify and stage the received bundle."""
    start = time.perf_counter()
    agent.process()
    elapsed = time.perf_counter() - start
    if agent.record.state.value != "ready":
        raise SystemExit(f"staging ended in state {agent.record.state}")
    return elapsed


def _child(directory: Path, repeat: int) -> None:
    """Receive, copy and stage ``repeat`` times; print the best times as JSON (runs in a fresh interpreter)."""
    import tracemalloc

    from sdv.ota.agent.config import AgentConfig, ImageSlotConfig

    config = AgentConfig(
        state_dir=directory / "state",
        trust=directory / "trust.json",
        hardware_id="bench-ecu",
        slots=[ImageSlotConfig(kind="image", name="system", a=directory / "a.img", b=directory / "b.img")],
    )
    bundle = directory / "bench.sdvota"
    copy_times, stage_times, traced_peak, rss_before = [], [], 0, 0
    with UpdateAgent(config) as agent:
        for round_number in range(repeat):
            agent.receive_file(bundle)
            # interleaved, and alternating which side goes first, so neither drifting machine load nor the
            # order (cache state, pending writeback) favours one side
            sides = (_copy, _stage) if round_number % 2 == 0 else (_stage, _copy)
            for side in sides:
                os.sync()  # earlier dirty pages reach the disk before a side is timed
                if side is _copy:
                    copy_times.append(_copy(bundle, directory / "copy.img"))
                    continue
                rss_before = rss_before or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
                tracemalloc.start()
                stage_times.append(_stage(agent))
                traced_peak = max(traced_peak, tracemalloc.get_traced_memory()[1])
                tracemalloc.stop()
            agent.cancel()  # back to idle for the next round; slot B is rewritten
    report = {
        "bytes": (directory / "b.img").stat().st_size,
        "copy_elapsed": min(copy_times),
        "stage_elapsed": min(stage_times),
        "rss_before": rss_before,
        "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "traced_peak": traced_peak,
    }
    print(json.dumps(report))


_PUSH_CHUNKS = (16 * 1024, 1024 * 1024)


def _push_child(directory: Path, repeat: int, sync_bytes: int) -> None:
    """Push the bundle over a real gRPC server ``repeat`` times per chunk size, interleaved with local copies."""
    import asyncio
    import threading

    from sdv.api.ota import OtaServer
    from sdv.ota.agent.config import AgentConfig, ImageSlotConfig, TransferConfig
    from sdv.ota.client import OtaClient

    config = AgentConfig(
        state_dir=directory / "state",
        trust=directory / "trust.json",
        hardware_id="bench-ecu",
        slots=[ImageSlotConfig(kind="image", name="system", a=directory / "a.img", b=directory / "b.img")],
        transfer=TransferConfig(min_free_bytes=0, sync_interval_bytes=sync_bytes),
    )
    bundle = directory / "bench.sdvota"
    loop = asyncio.new_event_loop()
    times: dict[str, list[float]] = {"copy": [], **{str(chunk): [] for chunk in _PUSH_CHUNKS}}
    with UpdateAgent(config) as agent:
        server = OtaServer(agent, address="127.0.0.1", port=0)
        loop.run_until_complete(server.start())
        serving = threading.Thread(target=loop.run_forever)
        serving.start()
        try:
            with OtaClient(server.target) as client:
                for _ in range(repeat):
                    for chunk in _PUSH_CHUNKS:
                        os.sync()
                        times["copy"].append(_copy(bundle, directory / "copy.sdvota"))
                        os.sync()
                        start = time.perf_counter()
                        client.push(bundle, chunk_bytes=chunk)
                        times[str(chunk)].append(time.perf_counter() - start)
                        client.cancel()
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            serving.join(30)
            loop.close()
    report: dict[str, float] = {name: min(values) for name, values in times.items()}
    report["bytes"] = bundle.stat().st_size
    print(json.dumps(report))


def _measure_push(size_mib: int, repeat: int, directory: Path) -> list[tuple[int, dict[str, float]]]:
    import subprocess

    bundle, _ = build_bundle(directory, size_mib)
    print(f"{size_mib} MiB bundle for the push built and signed", flush=True)
    rows = []
    for sync_bytes in (4 * _MIB, 0):
        result = subprocess.run(
            [sys.executable, __file__, "--push-child", str(directory), "--repeat", str(repeat),
             "--sync-bytes", str(sync_bytes)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        rows.append((sync_bytes, json.loads(result.stdout)))
    bundle.unlink(missing_ok=True)
    return rows


def _print_push(size_mib: int, rows: list[tuple[int, dict[str, float]]], repeat: int) -> None:
    print()
    print(f"push of a {size_mib} MiB bundle over gRPC on 127.0.0.1 (real server and client)")
    print("fsync interval          chunk     local copy   push         ratio")
    for sync_bytes, report in rows:
        megabytes = report["bytes"] / 1e6
        copy_rate = megabytes / report["copy"]
        label = f"every {sync_bytes // _MIB} MiB / 1 s" if sync_bytes else "every chunk"
        for chunk in _PUSH_CHUNKS:
            push_rate = megabytes / report[str(chunk)]
            print(
                f"{label:<22} {chunk // 1024:>6} KiB {copy_rate:>7.0f} MB/s {push_rate:>7.1f} MB/s "
                f"{push_rate / copy_rate:>7.3f}"
            )
    print(
        f"ratio: push throughput / local-copy throughput (shutil.copyfileobj + fsync), same run, best of {repeat}"
    )


def _measure(size_mib: int, repeat: int, directory: Path) -> dict[str, float]:
    import subprocess

    start = time.perf_counter()
    bundle, _ = build_bundle(directory, size_mib)
    print(f"{size_mib} MiB bundle built and signed in {time.perf_counter() - start:.1f} s", flush=True)
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(directory), "--repeat", str(repeat)],
        check=True,
        capture_output=True,
        text=True,
    )
    bundle.unlink(missing_ok=True)
    report: dict[str, float] = json.loads(result.stdout)
    return report


def _run(sizes: list[int], repeat: int, root: Path, push_mib: int) -> int:
    rows = []
    for size_mib in sizes:
        directory = root / f"{size_mib}mib"
        directory.mkdir(parents=True, exist_ok=True)
        rows.append((size_mib, _measure(size_mib, repeat, directory)))
        shutil.rmtree(directory, ignore_errors=True)
    print()
    print("size      plain copy   staging      ratio   peak RSS   RSS before   python peak (tracemalloc)")
    for size_mib, report in rows:
        megabytes = report["bytes"] / 1e6
        copy_rate = megabytes / report["copy_elapsed"]
        stage_rate = megabytes / report["stage_elapsed"]
        print(
            f"{size_mib:>5} MiB {copy_rate:>7.0f} MB/s {stage_rate:>7.0f} MB/s {stage_rate / copy_rate:>7.2f} "
            f"{report['rss_peak'] / 1e6:>7.1f} MB {report['rss_before'] / 1e6:>9.1f} MB "
            f"{report['traced_peak'] / 1e6:>9.2f} MB"
        )
    print(f"ratio: staging throughput / plain-copy throughput, same payload, same run, best of {repeat}")
    if push_mib:
        directory = root / "push"
        directory.mkdir(parents=True, exist_ok=True)
        _print_push(push_mib, _measure_push(push_mib, repeat, directory), repeat)
        shutil.rmtree(directory, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="64,1024", help="bundle sizes in MiB, comma-separated (default 64,1024)"
    )
    parser.add_argument("--keep", type=Path, help="work in this directory (default: a temporary directory)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds of each side (default 3)")
    parser.add_argument(
        "--push-mib",
        type=int,
        default=64,
        help="bundle size of the push benchmark in MiB (0: skip; default 64)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--push-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sync-bytes", type=int, default=4 * _MIB, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.repeat)
        return 0
    if args.push_child:
        _push_child(args.push_child, args.repeat, args.sync_bytes)
        return 0
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return _run(sizes, args.repeat, args.keep, args.push_mib)
    with tempfile.TemporaryDirectory(prefix="sdv-ota-stage-bench-") as directory:
        return _run(sizes, args.repeat, Path(directory), args.push_mib)


if __name__ == "__main__":
    sys.exit(main())
