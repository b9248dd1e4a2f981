"""Benchmark: verifying a large bundle keeps memory flat and runs near the speed of ``sha256sum``.

Builds a bundle holding one payload of ``--size`` MiB (default 1024, i.e. 1 GiB) in a temporary directory with
the ``sdv ota`` commands, signs it with two keys (threshold 2), then, in one run:

* times ``sha256sum`` over the bundle file (best of ``--repeat`` runs);
* verifies the bundle in a child process (best of ``--repeat`` runs), which reports its own verification time,
  its peak resident set size (``resource.getrusage``) and the peak of Python allocations during verification
  (``tracemalloc``).

It prints both figures and checks the targets: peak memory under 64 MB and a throughput of at least 0.8 times
that of ``sha256sum``. Exit code 0 when both are met, 1 otherwise.

    python bench/bench_ota_verify.py [--size MIB] [--repeat N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEMORY_TARGET_BYTES = 64 * 1000 * 1000
THROUGHPUT_TARGET = 0.8
_MIB = 1024 * 1024


def _child(bundle: Path, trust: Path) -> None:
    """Verify once and report time and memory as JSON (runs in a fresh interpreter)."""
    import tracemalloc

    from sdv.ota.bundle.store import load_trust, verify_bundle_file

    root = load_trust(trust).signed
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    start = time.perf_counter()
    verified = verify_bundle_file(bundle, root, hardware_id="bench-ecu", installed_counter=0)
    elapsed = time.perf_counter() - start
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    report = {
        "elapsed": elapsed,
        "rss_before": rss_before,
        "rss_peak": rss_peak,
        "traced_peak": traced_peak,
        "bytes": verified.manifest.total_size,
    }
    print(json.dumps(report))


def _sdv(*arguments: str | Path) -> None:
    command = [sys.executable, "-m", "sdv.cli.main", *map(str, arguments)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def write_payload(path: Path, size_mib: int) -> None:
    """A payload of ``size_mib`` MiB of random data, every MiB different."""
    block = bytearray(os.urandom(_MIB))
    with path.open("wb") as handle:
        for index in range(size_mib):
            block[:8] = index.to_bytes(8, "big")  # every MiB differs
            handle.write(block)


def build_bundle(directory: Path, size_mib: int) -> tuple[Path, Path]:
    """Keys, a trust root (threshold 2) and a signed bundle with one slot image ``system.img`` of ``size_mib`` MiB.

    Returns:
        The bundle and the trust file.
    """
    for name in ("k1", "k2"):
        _sdv("ota", "keygen", "--private", directory / f"{name}.pem", "--public", directory / f"{name}.pub")
    trust = directory / "trust.json"
    _sdv(
        "ota",
        "trust",
        "init",
        "--key",
        directory / "k1.pub",
        "--key",
        directory / "k2.pub",
        "--threshold",
        "2",
        "-o",
        trust,
    )
    payload = directory / "system.img"
    write_payload(payload, size_mib)
    bundle = directory / "bench.sdvota"
    _sdv(
        "ota", "build", "--name", "bench", "--version", "1.0.0", "--release-counter", "1",
        "--hardware-id", "bench-ecu", "--payload", payload, "-o", bundle,
    )  # fmt: skip
    payload.unlink()
    _sdv("ota", "sign", bundle, "--key", directory / "k1.pem", "--key", directory / "k2.pem")
    return bundle, trust


def _time_sha256sum(bundle: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["sha256sum", str(bundle)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def _verify_in_child(bundle: Path, trust: Path) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", str(bundle), str(trust)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    report: dict[str, float] = json.loads(result.stdout)
    return report


def _run(size_mib: int, repeat: int, directory: Path) -> int:
    if shutil.which("sha256sum") is None:
        print("sha256sum is not installed", file=sys.stderr)
        return 2
    start = time.perf_counter()
    bundle, trust = build_bundle(directory, size_mib)
    size = bundle.stat().st_size
    print(f"bundle: {size / _MIB:.0f} MiB built and signed in {time.perf_counter() - start:.1f} s ({bundle})")
    _time_sha256sum(bundle)  # warm the page cache so both sides read from memory
    sha_times, children = [], []
    for _ in range(repeat):  # interleaved, so drifting machine load hits both sides alike
        sha_times.append(_time_sha256sum(bundle))
        children.append(_verify_in_child(bundle, trust))
    sha_best = min(sha_times)
    best = min(children, key=lambda report: report["elapsed"])
    rss_peak = max(report["rss_peak"] for report in children)
    traced_peak = max(report["traced_peak"] for report in children)
    ratio = sha_best / best["elapsed"]
    print(f"sha256sum:        {sha_best:.3f} s  ({size / _MIB / sha_best:.0f} MiB/s), best of {repeat}")
    print(
        f"sdv ota verify:   {best['elapsed']:.3f} s  ({size / _MIB / best['elapsed']:.0f} MiB/s), best of {repeat}"
    )
    print(f"throughput ratio: {ratio:.2f} x sha256sum (target >= {THROUGHPUT_TARGET})")
    print(
        f"peak memory:      {rss_peak / 1e6:.1f} MB resident for the whole verifying process "
        f"({best['rss_before'] / 1e6:.1f} MB before verification; target < {MEMORY_TARGET_BYTES / 1e6:.0f} MB)"
    )
    print(f"python allocations during verification: peak {traced_peak / 1e6:.2f} MB (tracemalloc)")
    met = rss_peak < MEMORY_TARGET_BYTES and ratio >= THROUGHPUT_TARGET
    print("targets met" if met else "targets NOT met")
    return 0 if met else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="payload size in MiB (default 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side (default 3)")
    parser.add_argument("--keep", type=Path, help="build in this directory and keep it (default: a temp dir)")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return 0
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return _run(args.size, args.repeat, args.keep)
    with tempfile.TemporaryDirectory(prefix="sdv-ota-bench-") as directory:
        return _run(args.size, args.repeat, Path(directory))


if __name__ == "__main__":
    sys.exit(main())
