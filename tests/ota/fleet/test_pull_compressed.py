"""Pulling a bundle with compressed payloads from nginx: the agent downloads the compressed bytes (fewer than the
content), decompresses while it verifies and stages, and the slots hold byte-identical content."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from tests.ota.conftest import Ecu, Keys
from tests.ota.fleet.servers import CuttingProxy, Nginx
from tests.ota.fleet.test_pull_resume import (
    _fleet_config,
    build_compressed,
    poll_once,
    publish,
    www,
)

from sdv.ota.agent.core import read_record
from sdv.ota.agent.state import AgentState
from sdv.ota.bundle.store import read_bundle_header

__all__ = ["www"]

_MIB = 1024 * 1024


def _build(tmp_path: Path, keys: Keys, payloads: dict[str, Path]) -> tuple[Path, Path]:
    """A half-compressible image (zstd) and the test tree (xz) in a signed bundle."""
    image = tmp_path / "rootfs.img"  # half noise, half zeros: compressible, as a real root file system is
    image.write_bytes(random.Random(14).randbytes(2 * _MIB) + bytes(2 * _MIB))
    bundle = build_compressed(image, payloads["tree"], keys, tmp_path / "ihu.sdvota", "zstd", "app.tar=xz")
    return image, bundle


def test_a_compressed_bundle_pulled_from_nginx_stages_byte_identical_content(
    ecu: Ecu,
    tmp_path: Path,
    www: Path,
    keys: Keys,
    nginx: Nginx,
    payloads: dict[str, Path],
    new_software: tuple[str, str],
) -> None:
    image, bundle = _build(tmp_path, keys, payloads)
    manifest = read_bundle_header(bundle).parse_manifest(str(bundle))
    assert [payload.compression and payload.compression.algorithm for payload in manifest.payloads] == [
        "zstd",
        "xz",
    ]
    publish(bundle, www, keys)
    _fleet_config(ecu, nginx.url("index.json"))
    outcome = poll_once(ecu)
    assert outcome is not None and outcome.finished == "success", outcome
    record = read_record(ecu.state_dir)
    assert record.state is AgentState.ACTIVATED and record.installed is not None
    staged_image, staged_tree = ecu.software(record.groups["rootfs"].active_slot)
    assert staged_image == hashlib.sha256(image.read_bytes()).hexdigest()
    assert staged_tree == new_software[1]
    sent = sum(sent for _, _, sent in nginx.requests("ihu.sdvota"))
    assert bundle.stat().st_size < image.stat().st_size * 3 // 4
    assert (
        sent < bundle.stat().st_size + 8192
    )  # the wire carried the compressed bytes (and the header once more)


def test_a_cut_download_of_a_compressed_bundle_resumes_and_stages_byte_identical_content(
    ecu: Ecu,
    tmp_path: Path,
    www: Path,
    keys: Keys,
    nginx: Nginx,
    payloads: dict[str, Path],
    new_software: tuple[str, str],
) -> None:
    image, bundle = _build(tmp_path, keys, payloads)
    header = read_bundle_header(bundle).encoded_length
    publish(bundle, www, keys)
    rng = random.Random(21)
    proxy = CuttingProxy(nginx.port, [rng.randrange(300_000, 900_000) for _ in range(2)])
    try:
        _fleet_config(ecu, proxy.url("index.json"), backoff={"initial_s": 0.01, "max_s": 0.05})
        outcome = poll_once(ecu)
    finally:
        proxy.close()
    assert outcome is not None and outcome.finished == "success", outcome
    assert proxy.cut >= 2
    record = read_record(ecu.state_dir)
    staged_image, staged_tree = ecu.software(record.groups["rootfs"].active_slot)
    assert staged_image == hashlib.sha256(image.read_bytes()).hexdigest() and staged_tree == new_software[1]
    starts = [int(value.removeprefix("bytes=").split("-")[0]) for _, value, _ in nginx.requests("ihu.sdvota")]
    payload_starts = [start for start in starts if start >= header]
    assert payload_starts[0] == header and len(payload_starts) == 3, starts  # resumed twice, never from zero
    assert payload_starts == sorted(set(payload_starts))
