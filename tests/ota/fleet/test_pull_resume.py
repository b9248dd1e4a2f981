"""Pulling from a signed index on nginx: downloads resume from the agent's persisted offset after a cut
connection and after SIGKILL of the agent, never from zero (nginx's access log shows every Range), the staged
slot is byte-identical; TLS with the fleet CA."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from tests.ota.conftest import AgentProcess, BuildBundle, Ecu, Keys, ok
from tests.ota.fleet.servers import CuttingProxy, Nginx, start_nginx
from tests.security.pki import Authority
from tests.waiting import wait_until

from sdv.errors import ServerUnreachableError
from sdv.ota.agent.config import load_agent_config
from sdv.ota.agent.core import UpdateAgent, read_record
from sdv.ota.agent.state import AgentState
from sdv.ota.bundle.store import read_bundle_header
from sdv.ota.fleet.delivery import Outcome
from sdv.ota.fleet.index_poller import IndexPoller
from sdv.ota.fleet.updater import Identity

BIG = 6 * 1024 * 1024 + 123


@pytest.fixture
def www(tmp_path: Path) -> Path:
    root = tmp_path / "www"  # what the nginx fixture serves
    root.mkdir(exist_ok=True)
    return root


@pytest.fixture
def big_bundle(tmp_path: Path, build_bundle: BuildBundle, payloads: dict[str, Path]) -> Path:
    image = tmp_path / "rootfs.img"
    image.write_bytes(random.Random(14).randbytes(BIG))
    return build_bundle(output="ihu.sdvota", files=[image, payloads["tree"]])


def publish(bundle: Path, www: Path, keys: Keys, version: int = 1) -> Path:
    shutil.copy(bundle, www / bundle.name)
    index = www / "index.json"
    ok("ota", "index", "build", "--bundle", www / bundle.name, "--version", str(version), "-o", index)
    for signer in ("a", "e"):
        ok("ota", "index", "sign", index, "--key", keys.private(signer))
    return index


def build_compressed(image: Path, tree: Path, keys: Keys, bundle: Path, *compress: str) -> Path:
    """A signed bundle of ``image`` and ``tree`` built with ``--compress`` each of ``compress``."""
    arguments: list[str | Path] = [
        "ota", "build", "--name", "demo", "--version", "1.5.0", "--release-counter", "5", "--hardware-id", "ecu-a",
        "--payload", image, "--payload", tree, "-o", bundle,
    ]  # fmt: skip
    for spec in compress:
        arguments += ["--compress", spec]
    ok(*arguments)
    for signer in ("a", "e"):
        ok("ota", "sign", bundle, "--key", keys.private(signer))
    return bundle


def _identity(agent: UpdateAgent) -> Identity:
    from sdv.cli.ota_fleet_options import identity_of

    return identity_of(agent.config)


def poll_once(ecu: Ecu) -> Outcome | None:
    """One poll of the index, by an agent opened on the ECU's configuration as the agent's loop makes it."""
    with UpdateAgent(load_agent_config(ecu.config)) as agent:
        poller = IndexPoller(agent.config.fleet, agent, _identity(agent))  # type: ignore[arg-type]
        try:
            return poller.poll_once()
        finally:
            poller.http.close()


def _fleet_config(ecu: Ecu, url: str, **download: object) -> None:
    ecu.write_config(
        transfer={"min_free_bytes": 0, "max_chunk_bytes": 65536, "sync_interval_bytes": 256 * 1024},
        fleet={"index": {"url": url, "poll_s": 1}, "download": {"chunk_bytes": 65536, **download}},
    )


def _payload_offsets(bundle: Path) -> tuple[int, int]:
    header = read_bundle_header(bundle).encoded_length
    return header, bundle.stat().st_size


def test_a_cut_connection_resumes_at_the_received_offset(
    ecu: Ecu, big_bundle: Path, www: Path, keys: Keys, nginx: Nginx
) -> None:
    publish(big_bundle, www, keys)
    header, _ = _payload_offsets(big_bundle)
    rng = random.Random(7)
    # every connection is cut after a seeded number of response bytes, mid-payload; the fourth is whole
    proxy = CuttingProxy(nginx.port, [rng.randrange(700_000, 1_500_000) for _ in range(3)])
    try:
        _fleet_config(ecu, proxy.url("index.json"), backoff={"initial_s": 0.01, "max_s": 0.05})
        outcome = poll_once(ecu)
    finally:
        proxy.close()
    assert outcome is not None and outcome.finished == "success", outcome
    assert proxy.cut >= 3
    record = read_record(ecu.state_dir)
    assert record.state is AgentState.ACTIVATED and record.installed is not None
    image, _ = ecu.software(record.groups["rootfs"].active_slot)
    assert image == hashlib.sha256((ecu.root.parent / "rootfs.img").read_bytes()).hexdigest()
    starts = [int(value.removeprefix("bytes=").split("-")[0]) for _, value, _ in nginx.requests("ihu.sdvota")]
    payload_starts = [start for start in starts if start >= header]
    assert payload_starts[0] == header, starts  # the payload starts right after the verified header
    assert payload_starts == sorted(payload_starts) and len(set(payload_starts)) == len(payload_starts)
    assert len(payload_starts) == 4  # resumed after each cut, never from the start


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed", "compress"), [(1, None), (2, None), (3, "zstd")], ids=["image-1", "image-2", "zstd-3"]
)
def test_sigkill_mid_download_resumes_from_the_persisted_offset(
    seed: int,
    compress: str | None,
    ecu: Ecu,
    big_bundle: Path,
    www: Path,
    keys: Keys,
    tmp_path: Path,
    payloads: dict[str, Path],
    start_agent: Callable[..., AgentProcess],
) -> None:
    """An uncompressed image is received straight into the slot; a compressed one into the received file."""
    if compress is not None:  # the same payloads, stored compressed
        big_bundle = build_compressed(
            tmp_path / "rootfs.img", payloads["tree"], keys, tmp_path / "ihu.sdvota", compress
        )
    publish(big_bundle, www, keys)
    header, size = _payload_offsets(big_bundle)
    nginx = start_nginx(www, tmp_path / "slow-nginx", rate="3m")
    try:
        _fleet_config(ecu, nginx.url("index.json"))
        kill_at = random.Random(seed).randrange(header + 512 * 1024, size // 2)

        def persisted() -> int:
            state = ecu.state_dir / "state.json"
            if not state.exists():
                return 0
            transfer = json.loads(state.read_text()).get("transfer") or {}
            return int(transfer.get("offset", 0))

        first = start_agent(ecu.config)
        wait_until(lambda: persisted() >= kill_at, what=f"the persisted offset to pass {kill_at}")
        first.kill()
        killed_at = persisted()
        assert header < killed_at < size
        second = start_agent(ecu.config)
        wait_until(
            lambda: read_record(ecu.state_dir).state is AgentState.ACTIVATED,
            what="the update to be committed",
        )
        assert second.stop() == 0
    finally:
        nginx.stop()
    starts = [int(value.removeprefix("bytes=").split("-")[0]) for _, value, _ in nginx.requests("ihu.sdvota")]
    payload_starts = [start for start in starts if start >= header]
    assert payload_starts[0] == header and len(payload_starts) == 2, starts
    assert payload_starts[1] == killed_at  # from the offset the agent persisted, not from zero
    record = read_record(ecu.state_dir)
    image, _ = ecu.software(record.groups["rootfs"].active_slot)
    assert image == hashlib.sha256((tmp_path / "rootfs.img").read_bytes()).hexdigest()


def test_tls_with_the_fleet_ca_and_refused_without(
    ecu: Ecu, build_bundle: BuildBundle, www: Path, keys: Keys, tmp_path: Path
) -> None:
    authority = Authority("fleet CA")
    certificate, key = authority.issue("127.0.0.1", server=True).write(tmp_path, "server")
    ca = tmp_path / "ca.pem"
    ca.write_bytes(authority.pem)
    publish(build_bundle(output="ihu.sdvota"), www, keys)
    nginx = start_nginx(www, tmp_path / "tls-nginx", tls=(certificate, key))
    try:
        _fleet_config(ecu, nginx.url("index.json"))
        with pytest.raises(ServerUnreachableError, match="CERTIFICATE_VERIFY_FAILED"):
            poll_once(ecu)
        document = yaml.safe_load(ecu.config.read_text())
        document["fleet"]["tls"] = {"ca_file": str(ca)}
        ecu.config.write_text(yaml.safe_dump(document))
        outcome = poll_once(ecu)
    finally:
        nginx.stop()
    assert outcome is not None and outcome.finished == "success", outcome
    assert read_record(ecu.state_dir).installed is not None
