"""The pulled slot image goes straight into the inactive slot while it downloads: the received bundle file holds
the header and holes, never a second copy of the image; the install verifies the image where it lies."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from tests.ota.conftest import BuildBundle, Ecu, Keys
from tests.ota.fleet.servers import Nginx
from tests.ota.fleet.test_pull_resume import _fleet_config, _identity, poll_once, publish, www

from sdv.ota.agent.config import load_agent_config
from sdv.ota.agent.core import UpdateAgent, read_record
from sdv.ota.agent.state import AgentState
from sdv.ota.bundle.store import read_bundle_header
from sdv.ota.fleet.download import Artifact, Downloader
from sdv.ota.fleet.index_poller import IndexPoller

__all__ = ["www"]

_MIB = 1024 * 1024


def _allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


def test_the_image_is_received_into_the_inactive_slot_with_no_second_copy(
    ecu: Ecu,
    tmp_path: Path,
    www: Path,
    keys: Keys,
    nginx: Nginx,
    build_bundle: BuildBundle,
    payloads: dict[str, Path],
) -> None:
    image = tmp_path / "rootfs.img"
    image.write_bytes(random.Random(3).randbytes(8 * _MIB + 11))
    bundle = build_bundle(output="ihu.sdvota", files=[image, payloads["tree"]])
    publish(bundle, www, keys)
    _fleet_config(ecu, nginx.url("index.json"))
    header = read_bundle_header(bundle).encoded_length
    seen: list[tuple[int, int, int]] = []  # (bytes held, allocated in the received file, size of slot B)
    with UpdateAgent(load_agent_config(ecu.config)) as agent:
        identity = _identity(agent)
        poller = IndexPoller(agent.config.fleet, agent, identity)  # type: ignore[arg-type]
        downloader = Downloader(poller.http, agent, identity)
        artifact = Artifact(
            nginx.url("ihu.sdvota"),
            bundle.stat().st_size,
            hashlib.sha256(bundle.read_bytes()).hexdigest(),
            "ihu",
        )

        def progress(held: int, size: int) -> None:
            if agent.incoming.exists() and ecu.image("B").exists():
                seen.append((held, _allocated(agent.incoming), ecu.image("B").stat().st_size))

        downloader.fetch(artifact, progress)
        poller.http.close()
        assert agent.record.state is AgentState.TRANSFERRED
        # the whole image is in slot B; the received file holds the header and the tree, not the image
        assert ecu.image("B").read_bytes() == image.read_bytes()
        assert agent.incoming.stat().st_size == bundle.stat().st_size  # the same layout, with a hole
        assert _allocated(agent.incoming) < 1 * _MIB
        agent.process()
        assert agent.record.state is AgentState.READY and not agent.incoming.exists()
    assert ecu.image("B").read_bytes() == image.read_bytes()  # verified in place, kept
    middle = [entry for entry in seen if header + 2 * _MIB < entry[0] < bundle.stat().st_size - 2 * _MIB]
    assert middle, seen
    for held, allocated, slot in middle:  # while it downloads: the slot grows, the file does not
        assert slot >= held - header - 256 * 1024 and allocated < 1 * _MIB, (held, allocated, slot)
    assert read_record(ecu.state_dir).state is AgentState.READY


def test_a_refused_pulled_image_leaves_the_slot_empty(
    ecu: Ecu, tmp_path: Path, www: Path, keys: Keys, nginx: Nginx, build_bundle: BuildBundle
) -> None:
    image = tmp_path / "rootfs.img"
    image.write_bytes(random.Random(4).randbytes(2 * _MIB))
    bundle = build_bundle(output="ihu.sdvota", files=[image])
    data = bytearray(bundle.read_bytes())
    data[-1000] ^= 0x01  # the server's copy is damaged after signing; the index names the damaged file
    bundle.write_bytes(bytes(data))
    publish(bundle, www, keys)
    _fleet_config(ecu, nginx.url("index.json"))
    outcome = poll_once(ecu)
    assert outcome is not None and outcome.finished == "failure" and "SHA-256" in outcome.details, outcome
    assert read_record(ecu.state_dir).state is AgentState.FAILED
    assert ecu.image("B").stat().st_size == 0 and not (ecu.state_dir / "incoming.sdvota").exists()
