"""Benchmark: pulling a bundle from nginx on loopback into the agent and staging it, against ``curl`` of the same
file to disk, in flat memory.

For each variant (today ``plain``: an uncompressed bundle with one slot image of ``--mib`` MiB; a compressed
variant adds one entry to ``VARIANTS``), in a temporary directory:

* builds and signs the bundle with the ``sdv ota`` commands (threshold 2, as ``bench_ota_verify.py``) and serves
  it with nginx from Debian's packages on 127.0.0.1 (a configuration in the directory, no system service);
* in a fresh child process, ``--repeat`` rounds, interleaved: ``curl -s -o FILE URL`` followed by ``fsync``;
  then the agent's pull: the signed header in Range requests, verified, the payload streamed with
  ``Range: bytes=OFFSET-`` into the agent's transfer (its batched ``fsync``), then staging into the inactive
  image slot (:meth:`~sdv.ota.agent.core.UpdateAgent.process`). The child reports the best times and its peak
  resident set size.

It prints MB/s for curl, the download and download-and-stage, their ratios to curl from the same run, and the
peak RSS (the goal: flat, under 64 MB, whatever the bundle's size).

Figures, not pass/fail: exit code 0 unless something failed.

    python bench/bench_ota_pull.py [--mib 64] [--large] [--repeat N] [--keep DIR]
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
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test servers (nginx) live in tests/

from bench_ota_verify import build_bundle

_MIB = 1024 * 1024

VARIANTS: dict[str, Callable[[Path, int], tuple[Path, Path]]] = {"plain": build_bundle}
"""Variant name → how to build its bundle (directory, MiB) → (bundle, trust file)."""


def _curl(url: str, target: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["curl", "-s", "-f", "-o", str(target), url], check=True)
    with target.open("rb") as handle:
        os.fsync(handle.fileno())
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


def _child(directory: Path, url: str, repeat: int) -> None:
    """Curl and pull ``repeat`` times, interleaved; print the best times and the peak RSS as JSON."""
    from sdv.cli.ota_fleet_options import identity_of
    from sdv.ota.agent.config import AgentConfig, ImageSlotConfig, TransferConfig
    from sdv.ota.agent.core import UpdateAgent
    from sdv.ota.bundle.store import hash_file
    from sdv.ota.fleet.config import DownloadConfig, TlsConfig
    from sdv.ota.fleet.download import Artifact, Downloader
    from sdv.ota.fleet.http import FleetHttp

    config = AgentConfig(
        state_dir=directory / "state",
        trust=directory / "trust.json",
        hardware_id="bench-ecu",
        slots=[ImageSlotConfig(kind="image", name="system", a=directory / "a.img", b=directory / "b.img")],
        transfer=TransferConfig(min_free_bytes=0),
    )
    size, digest = hash_file(directory / "www" / "bench.sdvota")
    artifact = Artifact(url, size, digest, "bench")
    times: dict[str, list[float]] = {"curl": [], "download": [], "stage": []}
    http = FleetHttp(TlsConfig(), DownloadConfig(chunk_bytes=_MIB))
    with UpdateAgent(config) as agent:
        downloader = Downloader(http, agent, identity_of(config))
        for _ in range(repeat):
            os.sync()
            times["curl"].append(_curl(url, directory / "curl.sdvota"))
            os.sync()
            start = time.perf_counter()
            downloader.fetch(artifact, lambda held, total: None)
            times["download"].append(time.perf_counter() - start)
            start = time.perf_counter()
            agent.process()
            times["stage"].append(time.perf_counter() - start)
            agent.cancel()
    http.close()
    report: dict[str, float] = {name: min(values) for name, values in times.items()}
    report["bytes"] = size
    report["rss_peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(report))


def _measure(variant: str, size_mib: int, repeat: int, directory: Path) -> dict[str, float]:
    from tests.ota.fleet.servers import start_nginx

    www = directory / "www"
    www.mkdir(parents=True, exist_ok=True)
    bundle, _ = VARIANTS[variant](directory, size_mib)
    shutil.move(bundle, www / "bench.sdvota")
    print(f"{variant}: {size_mib} MiB bundle built and signed", flush=True)
    nginx = start_nginx(www, directory / "nginx")
    try:
        result = subprocess.run(
            [sys.executable, __file__, "--child", str(directory), "--url", nginx.url("bench.sdvota"),
             "--repeat", str(repeat)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        nginx.stop()
    report: dict[str, float] = json.loads(result.stdout)
    return report


def _run(sizes: list[int], repeat: int, root: Path) -> int:
    rows = []
    for variant in VARIANTS:
        for size_mib in sizes:
            directory = root / f"{variant}-{size_mib}mib"
            directory.mkdir(parents=True, exist_ok=True)
            rows.append((variant, size_mib, _measure(variant, size_mib, repeat, directory)))
            shutil.rmtree(directory, ignore_errors=True)
    print()
    print("variant  size      curl         download     ratio   download+stage  ratio   peak RSS")
    for variant, size_mib, report in rows:
        megabytes = report["bytes"] / 1e6
        curl = megabytes / report["curl"]
        download = megabytes / report["download"]
        staged = megabytes / (report["download"] + report["stage"])
        print(
            f"{variant:<8} {size_mib:>5} MiB {curl:>7.0f} MB/s {download:>7.0f} MB/s {download / curl:>7.2f} "
            f"{staged:>9.0f} MB/s {staged / curl:>7.2f} {report['rss_peak'] / 1e6:>7.1f} MB"
        )
    print(
        f"ratio: the agent's throughput / curl's (to disk, fsync), same file, same nginx, same run, best of {repeat}"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=64, help="bundle size in MiB (default 64)")
    parser.add_argument("--large", action="store_true", help="also 1 GiB")
    parser.add_argument("--keep", type=Path, help="work in this directory (default: a temporary directory)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds of each side (default 3)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        _child(args.child, args.url, args.repeat)
        return 0
    sizes = [args.mib, 1024] if args.large else [args.mib]
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return _run(sizes, args.repeat, args.keep)
    with tempfile.TemporaryDirectory(prefix="sdv-bench-pull-") as directory:
        return _run(sizes, args.repeat, Path(directory))


if __name__ == "__main__":
    sys.exit(main())
