"""Benchmark: pulling a bundle from nginx on loopback into the agent and staging it, against ``curl`` of the same
file to disk, in flat memory.

For each variant (``plain``: the slot image stored as is; ``zstd`` and ``xz``: stored compressed with
``sdv ota build --compress``; ``xz`` at 64 MiB only, its compression of 1 GiB takes minutes) and size, in a
temporary directory:

* writes a slot image of ``--mib`` MiB (and 1 GiB with ``--large``) in which every MiB is half random bytes and
  half a repeated text pattern (it compresses to about half, as root file systems do), the same content for
  every variant;
* builds and signs the bundle with the ``sdv ota`` commands (threshold 2, as ``bench_ota_verify.py``) and serves
  it with nginx from Debian's packages on 127.0.0.1 (a configuration in the directory, no system service);
* in a fresh child process, ``--repeat`` rounds, interleaved: ``curl -s -o FILE URL`` followed by ``fsync``;
  then the agent's pull with its default download settings (256 KiB chunks): the signed header in Range
  requests, verified, the payload streamed with ``Range: bytes=OFFSET-`` into the agent's transfer (its batched
  ``fsync``; an uncompressed image goes straight into the inactive slot, a compressed one into the received
  file), then the install step (:meth:`~sdv.ota.agent.core.UpdateAgent.process`: the image verified where it
  lies, or decompressed into the slot while verified). The child reports the best times and its peak resident
  set size.

It prints the bundle's size, MB/s for curl, the download and download-and-stage (all over the bundle's bytes, so
a compressed bundle's figures count the bytes on the wire), their ratios to curl of the same file in the same
run, the installed content's throughput (the slot image's size over download-and-stage), and the peak RSS (the
goal: flat, under 64 MB, whatever the bundle's size).

Figures, not pass/fail: exit code 0 unless something failed.

    python bench/bench_ota_pull.py [--mib 64] [--large] [--variant plain|zstd|xz ...] [--repeat N] [--keep DIR]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test servers (nginx) live in tests/

_MIB = 1024 * 1024
_PATTERN = b"sdv rootfs: /usr/lib/libexample.so.1 0123456789abcdef\n"


def _sdv(*arguments: str | Path) -> None:
    command = [sys.executable, "-m", "sdv.cli.main", *map(str, arguments)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def _write_image(path: Path, size_mib: int) -> None:
    """``size_mib`` MiB, every MiB half random, half a repeated pattern (every MiB differs)."""
    text = (_PATTERN * (_MIB // 2 // len(_PATTERN) + 1))[: _MIB // 2]
    with path.open("wb") as handle:
        for index in range(size_mib):
            handle.write(index.to_bytes(8, "big") + os.urandom(_MIB // 2 - 8) + text)


def _build(directory: Path, size_mib: int, compress: str) -> Path:
    """Keys, a trust root (threshold 2) and a signed bundle with one slot image ``system.img``."""
    for name in ("k1", "k2"):
        _sdv("ota", "keygen", "--private", directory / f"{name}.pem", "--public", directory / f"{name}.pub")
    _sdv(
        "ota", "trust", "init", "--key", directory / "k1.pub", "--key", directory / "k2.pub", "--threshold", "2",
        "-o", directory / "trust.json",
    )  # fmt: skip
    payload = directory / "system.img"
    _write_image(payload, size_mib)
    bundle = directory / "bench.sdvota"
    _sdv(
        "ota", "build", "--name", "bench", "--version", "1.0.0", "--release-counter", "1",
        "--hardware-id", "bench-ecu", "--payload", payload, "--compress", compress, "-o", bundle,
    )  # fmt: skip
    payload.unlink()
    _sdv("ota", "sign", bundle, "--key", directory / "k1.pem", "--key", directory / "k2.pem")
    return bundle


VARIANTS: dict[str, int] = {"plain": 1024, "zstd": 1024, "xz": 64}
"""Variant (its ``--compress``; ``plain`` is ``none``) → the largest size in MiB it is measured at."""


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
    from sdv.ota.bundle.store import hash_file, read_bundle_header
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
    manifest = read_bundle_header(directory / "www" / "bench.sdvota").parse_manifest("bench")
    artifact = Artifact(url, size, digest, "bench")
    times: dict[str, list[float]] = {"curl": [], "download": [], "stage": []}
    http = FleetHttp(TlsConfig(), DownloadConfig())  # the agent's default chunks (256 KiB)
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
    report["content"] = manifest.total_installed_size
    report["rss_peak"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(report))


def _measure(variant: str, size_mib: int, repeat: int, directory: Path) -> dict[str, float]:
    from tests.ota.fleet.servers import start_nginx

    www = directory / "www"
    www.mkdir(parents=True, exist_ok=True)
    bundle = _build(directory, size_mib, "none" if variant == "plain" else variant)
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


def _run(sizes: list[int], repeat: int, root: Path, variants: list[str]) -> int:
    rows = []
    for variant in variants:
        largest = VARIANTS[variant]
        for size_mib in (size for size in sizes if size <= largest):
            directory = root / f"{variant}-{size_mib}mib"
            directory.mkdir(parents=True, exist_ok=True)
            rows.append((variant, size_mib, _measure(variant, size_mib, repeat, directory)))
            shutil.rmtree(directory, ignore_errors=True)
    print()
    print(
        "variant  image     bundle     curl         download     ratio   download+stage  ratio   content      "
        "peak RSS"
    )
    for variant, size_mib, report in rows:
        megabytes = report["bytes"] / 1e6
        curl = megabytes / report["curl"]
        download = megabytes / report["download"]
        elapsed = report["download"] + report["stage"]
        staged = megabytes / elapsed
        print(
            f"{variant:<8} {size_mib:>5} MiB {megabytes:>7.1f} MB {curl:>7.0f} MB/s {download:>7.0f} MB/s "
            f"{download / curl:>7.2f} {staged:>9.0f} MB/s {staged / curl:>7.2f} "
            f"{report['content'] / 1e6 / elapsed:>7.0f} MB/s {report['rss_peak'] / 1e6:>7.1f} MB"
        )
    print(
        f"ratio: the agent's throughput / curl's (to disk, fsync), same file, same nginx, same run, best of {repeat}; "
        "content: the slot image's bytes over download+stage"
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=64, help="slot image size in MiB (default 64)")
    parser.add_argument("--variant", action="append", choices=list(VARIANTS), help="only these (repeat)")
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
    variants = args.variant or list(VARIANTS)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        return _run(sizes, args.repeat, args.keep, variants)
    with tempfile.TemporaryDirectory(prefix="sdv-bench-pull-") as directory:
        return _run(sizes, args.repeat, Path(directory), variants)


if __name__ == "__main__":
    sys.exit(main())
