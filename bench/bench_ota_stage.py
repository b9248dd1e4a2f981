"""Benchmark: staging a bundle into an image slot runs near the speed of a plain copy, in constant memory.

For each bundle size (default 64 MiB and 1 GiB, one slot-image payload), in a temporary directory:

* builds and signs the bundle with the ``sdv ota`` commands (threshold 2, as ``bench_ota_verify.py``);
* in a fresh child process: hands the bundle to an :class:`~sdv.ota.agent.UpdateAgent` (untimed, then
  ``sync``), then times a plain copy of the bundle file into an image file (``shutil.copyfileobj`` and
  ``fsync``, the same bytes from the page cache) and staging: signature checks, streaming the payload through SHA-256 into the
  inactive slot's image file and ``fsync``; ``--repeat`` rounds, interleaved. The child reports the best times, its peak resident set size
  (``resource.getrusage``) and the peak of Python allocations during staging (``tracemalloc``).

It prints MB/s for both, their ratio from the same run, and the memory figures per size, so it shows whether
memory grows with the bundle. Figures, not pass/fail: exit code 0 unless something failed.

    python bench/bench_ota_stage.py [--sizes MIB,MIB] [--repeat N] [--keep DIR]
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
from sdv.ota.agent import UpdateAgent

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

    from sdv.ota.agent_config import AgentConfig, ImageSlotConfig

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


def _run(sizes: list[int], repeat: int, root: Path) -> int:
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
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="64,1024", help="bundle sizes in MiB, comma-separated (default 64,1024)"
    )
    parser.add_argument("--keep", type=Path, help="work in this directory (default: a temporary directory)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds of each side (default 3)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.repeat)
        return 0
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return _run(sizes, args.repeat, args.keep)
    with tempfile.TemporaryDirectory(prefix="sdv-ota-stage-bench-") as directory:
        return _run(sizes, args.repeat, Path(directory))


if __name__ == "__main__":
    sys.exit(main())
