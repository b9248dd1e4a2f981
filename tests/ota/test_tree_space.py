"""A tree payload is unpacked from the received bundle (never copied beside it), after its space need was counted
in the target file system's own blocks and inodes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import BuildBundle, Ecu, entry, make_tar
from sdv.ota.agent.slots import PayloadOrigin, TreeSlotGroup, tree_space_needed
from sdv.ota.agent.state import AgentState
from sdv.ota.agent.store import read_record
from sdv.ota.bundle.manifest import FileTreeTarget, Payload


def _many_small_files(path: Path, count: int) -> Path:
    members = [(entry("data", tarfile.DIRTYPE, mode=0o755), b"")]
    members += [(entry(f"data/{index:04}.conf"), b"x=%d\n" % index) for index in range(count)]
    return make_tar(path, members)


def test_the_need_is_counted_in_blocks_and_inodes(tmp_path: Path) -> None:
    archive = _many_small_files(tmp_path / "small.tar", 100)
    with archive.open("rb") as source:
        needed, inodes = tree_space_needed(source, 4096)
    assert inodes == 101 and needed == 101 * 4096  # a block per small file and one for the directory
    assert needed > 2 * archive.stat().st_size  # more than the old estimate of twice the archive


def test_a_tree_is_read_from_where_it_lies_without_a_second_copy(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "app.tar", [(entry("bin/app", mode=0o755), b"new\n")])
    data = archive.read_bytes()
    bundle = tmp_path / "bundle.bin"
    bundle.write_bytes(b"HEADER" + data + b"NEXT PAYLOAD")
    payload = Payload(
        name="app.tar",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        target=FileTreeTarget(kind="file-tree", path="/opt/app"),
    )
    group = TreeSlotGroup("app", "/opt/app", tmp_path / "apps")
    writer = group.writer("B", payload, PayloadOrigin(bundle, 6, len(data)))
    writer.write(memoryview(data))  # the chunks pass by; nothing is stored for them
    assert list(group.root.iterdir()) == []
    writer.finish()
    assert (group.root / "B" / "bin" / "app").read_text() == "new\n"
    assert sorted(path.name for path in group.root.iterdir()) == ["B"]


def test_a_tree_too_big_for_its_small_file_system_returns_to_transferred_and_keeps_the_bundle(
    ecu: Ecu, build_bundle: BuildBundle, tmp_path: Path
) -> None:
    """A real tmpfs of 1 MiB (4 KiB blocks) in a mount namespace: 400 small files pass the header's size check
    (their archive is about 400 KiB) but need 1.6 MiB once unpacked."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is not installed")
    small = ecu.root / "small"
    small.mkdir()
    archive = _many_small_files(tmp_path / "app.tar", 400)
    assert archive.stat().st_size < 1024 * 1024
    slots = [{"kind": "tree", "name": "app", "path": "/opt/app", "root": "small"}]
    ecu.write_config(slots=slots)
    bundle = build_bundle(name="apps", counter=6, files=[archive])
    command = f'mount -t tmpfs -o size=1m tmpfs "{small}" && exec "$0" -m sdv.cli.main "$@"'
    options = ["--mount"] if os.geteuid() == 0 else ["--mount", "--map-root-user"]
    probe = subprocess.run([unshare, *options, "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"no mount namespace here: {probe.stderr.strip()}")
    result = subprocess.run(
        [unshare, *options, "sh", "-c", command, sys.executable, "ota", "install", str(bundle), "--config",
         str(ecu.config)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "4096-byte blocks" in result.stderr and "free" in result.stderr
    record = read_record(ecu.state_dir)
    assert record.state is AgentState.TRANSFERRED and "4096-byte blocks" in (record.failure or "")
    assert (ecu.state_dir / "incoming.sdvota").stat().st_size == bundle.stat().st_size  # kept for a retry
    assert list(small.iterdir()) == []  # nothing was unpacked outside the namespace's file system either
