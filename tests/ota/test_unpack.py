"""The tree unpacker on its own: it refuses every unsafe member even without the archive checks before it."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from conftest import entry, make_tar
from sdv.ota.agent.slots import tree_digest
from sdv.ota.agent.unpack import file_mode, unpack_tree
from sdv.ota.errors import UnsafeArchiveEntryError

_FILE = (entry("data.txt"), b"payload\n")
_UNSAFE = {
    "absolute path": [(entry("/etc/passwd"), b"x")],
    "parent directory": [(entry("../outside.txt"), b"x")],
    "parent inside a path": [(entry("sub/../../outside.txt"), b"x")],
    "character device": [(entry("dev/null", tarfile.CHRTYPE), b"")],
    "block device": [(entry("dev/sda", tarfile.BLKTYPE), b"")],
    "fifo": [(entry("pipe", tarfile.FIFOTYPE), b"")],
    "absolute symlink": [(entry("etc", tarfile.SYMTYPE, link="/etc"), b"")],
    "symlink leaving the tree": [(entry("up", tarfile.SYMTYPE, link="../.."), b"")],
    "symlink chain leaving the tree": [
        (entry("here", tarfile.SYMTYPE, link="."), b""),
        (entry("away", tarfile.SYMTYPE, link="here/../.."), b""),
    ],
    "write through a symlink": [
        (entry("sub", tarfile.DIRTYPE, mode=0o755), b""),
        (entry("link", tarfile.SYMTYPE, link="sub"), b""),
        (entry("link/file.txt"), b"x"),
    ],
    "hard link leaving the tree": [(entry("hard", tarfile.LNKTYPE, link="../outside.txt"), b"")],
    "hard link to a later file": [(entry("hard", tarfile.LNKTYPE, link="data.txt"), b""), _FILE],
    "duplicate file": [_FILE, _FILE],
    "file over a directory": [(entry("data.txt", tarfile.DIRTYPE, mode=0o755), b""), _FILE],
}


@pytest.mark.parametrize("members", _UNSAFE.values(), ids=list(_UNSAFE))
def test_unsafe_members_are_refused_and_nothing_leaves_the_tree(
    tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes]]
) -> None:
    archive = make_tar(tmp_path / "evil.tar", members)
    root = tmp_path / "box" / "tree"
    root.mkdir(parents=True)
    with archive.open("rb") as source, pytest.raises(UnsafeArchiveEntryError, match="evil"):
        unpack_tree(source, root, "evil")
    assert sorted(path.name for path in (tmp_path / "box").iterdir()) == ["tree"]
    assert not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize(
    ("archived", "unpacked"),
    [(0o644, 0o644), (0o4755, 0o755), (0o2711, 0o711), (0o777, 0o755), (0o066, 0o644), (0o017, 0o604)],
)
def test_file_modes_are_sanitised_like_the_data_filter(archived: int, unpacked: int, tmp_path: Path) -> None:
    assert file_mode(archived) == unpacked
    archive = make_tar(tmp_path / "modes.tar", [(entry("tool", mode=archived), b"#!/bin/sh\n")])
    root = tmp_path / "tree"
    root.mkdir()
    with archive.open("rb") as source:
        unpack_tree(source, root, "modes")
    assert stat.S_IMODE((root / "tool").stat().st_mode) == unpacked


def test_a_safe_tree_unpacks_with_its_files_links_and_directories(
    tmp_path: Path, payloads: dict[str, Path]
) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    with payloads["tree"].open("rb") as source:
        unpack_tree(source, root, "app")
    assert (root / "bin" / "app").read_text() == "#!/bin/sh\necho app\n"
    assert os.readlink(root / "bin" / "run") == "app"
    assert (root / "etc" / "current.conf").read_text() == "speed_limit=130\n"
    assert (root / "bin" / "app.hard").stat().st_ino == (root / "bin" / "app").stat().st_ino
    assert stat.S_IMODE((root / "bin").stat().st_mode) == 0o755
    reference = tmp_path / "reference"
    reference.mkdir()
    with tarfile.open(payloads["tree"]) as archive:  # the trusted test archive, by the stdlib
        for member in archive.getmembers():
            archive.extract(member, reference, set_attrs=False)
    assert tree_digest(root) == tree_digest(reference)


def test_implicit_parent_directories_are_created(tmp_path: Path) -> None:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        info = tarfile.TarInfo("deep/er/file.txt")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))
    data.seek(0)
    root = tmp_path / "tree"
    root.mkdir()
    unpack_tree(data, root, "implicit")
    assert (root / "deep" / "er" / "file.txt").read_bytes() == b"abc"
