"""Unpacking a verified file-tree payload into an empty directory, on every Python 3.11 and later.

The archive has already passed :mod:`sdv.ota.bundle.archive`'s checks when it reaches :func:`unpack_tree`; the
unpacker still trusts nothing and applies the same rules itself, member by member, so a mistake in either layer
alone cannot write outside the tree. It creates only:

* directories (mode ``0o755``), regular files (never through an existing entry: ``O_EXCL | O_NOFOLLOW``) and
  hard links to regular files it created earlier;
* symbolic links, last, once every file and directory exists, so nothing is ever written through one; a link
  whose target is absolute or resolves (with the links made before it) outside the tree is refused.

Paths must be relative, without ``..``; device files, FIFOs and every other member type are refused. Modes are
sanitised as tarfile's ``data`` filter does: no set-id or sticky bits, no group or other write bit, the owner can
always read and write a file, and execute bits stay only when the owner's is set. Ownership is never applied.
Where the running Python has ``tarfile.data_filter`` (3.11.4 and later) every member is also passed through it,
as a third line of defence; Python 3.11.0 to 3.11.3 lack it and rely on the first two.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from sdv.ota.errors import UnsafeArchiveEntryError

__all__ = ["file_mode", "unpack_tree"]

_DIRECTORY_MODE = 0o755
_COPY_CHUNK = 1024 * 1024
_StdlibFilter = Callable[[tarfile.TarInfo, str], tarfile.TarInfo | None]
# tarfile.data_filter exists from Python 3.11.4 and 3.12 on
_STDLIB_FILTER: _StdlibFilter | None = getattr(tarfile, "data_filter", None)


def file_mode(mode: int) -> int:
    """The permission bits a regular file gets, as tarfile's ``data`` filter computes them.

    Set-id, sticky, group-write and other-write bits are dropped; execute bits stay only when the owner's is
    set; the owner may always read and write.
    """
    mode &= 0o755
    if not mode & 0o100:
        mode &= ~0o111
    return mode | 0o600


def _relative_path(name: str, label: str) -> str:
    if not name or "\x00" in name or name.startswith("/"):
        raise UnsafeArchiveEntryError(f"{label}: entry {name!r} is not a relative path")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveEntryError(f"{label}: entry {name!r} contains '..'")
    return "/".join(parts)


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


class _Unpacker:
    def __init__(self, root: Path, label: str) -> None:
        self._root = root
        self._real_root = os.path.realpath(root)
        self._label = label
        self._files: set[str] = set()
        self._directories: dict[str, int] = {}
        self._symlinks: list[tuple[str, str]] = []

    def member(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        path = _relative_path(member.name, self._label)
        if _STDLIB_FILTER is not None:
            try:
                _STDLIB_FILTER(member, str(self._root))
            except tarfile.FilterError as error:
                raise UnsafeArchiveEntryError(f"{self._label}: entry {member.name!r}: {error}") from error
        if member.isdir():
            if path:
                self._make_directories(path)
                self._directories[path] = int(member.mtime)
        elif not path:
            raise UnsafeArchiveEntryError(f"{self._label}: entry {member.name!r} names the tree's root")
        elif member.isreg():
            self._write_file(archive, member, path)
        elif member.islnk():
            self._hard_link(member, path)
        elif member.issym():
            self._symlinks.append((path, member.linkname))  # made last: nothing is written through a link
        else:
            raise UnsafeArchiveEntryError(
                f"{self._label}: entry {path} is neither a file, a directory nor a link"
            )

    def _make_directories(self, path: str) -> None:
        current = self._root
        for part in path.split("/"):
            current = current / part
            if current.is_symlink() or (current.exists() and not current.is_dir()):
                raise UnsafeArchiveEntryError(f"{self._label}: {path} lies below a non-directory entry")
            if not current.exists():
                current.mkdir(mode=_DIRECTORY_MODE)
                current.chmod(_DIRECTORY_MODE)  # whatever the umask

    def _target(self, path: str) -> Path:
        parent = posixpath.dirname(path)
        if parent:
            self._make_directories(parent)
        return self._root / path

    def _write_file(self, archive: tarfile.TarFile, member: tarfile.TarInfo, path: str) -> None:
        target = self._target(path)
        mode = file_mode(member.mode)
        source = archive.extractfile(member)
        if source is None:  # pragma: no cover - a regular member always has data
            raise UnsafeArchiveEntryError(f"{self._label}: entry {path} has no data")
        try:
            descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        except FileExistsError:
            raise UnsafeArchiveEntryError(f"{self._label}: entry {path} appears more than once") from None
        with os.fdopen(descriptor, "wb") as handle:
            shutil.copyfileobj(source, handle, _COPY_CHUNK)
        os.chmod(target, mode)
        os.utime(target, (member.mtime, member.mtime))
        self._files.add(path)

    def _hard_link(self, member: tarfile.TarInfo, path: str) -> None:
        linked = _relative_path(member.linkname, self._label)
        if linked not in self._files:
            raise UnsafeArchiveEntryError(
                f"{self._label}: hard link {path} points to {member.linkname!r}, "
                "which is not an earlier regular file of the archive"
            )
        target = self._target(path)
        try:
            os.link(self._root / linked, target, follow_symlinks=False)
        except FileExistsError:
            raise UnsafeArchiveEntryError(f"{self._label}: entry {path} appears more than once") from None
        self._files.add(path)

    def finish(self) -> None:
        for path, link in self._symlinks:
            if not link or link.startswith("/"):
                raise UnsafeArchiveEntryError(
                    f"{self._label}: symbolic link {path} -> {link!r} does not stay inside the tree"
                )
            target = self._target(path)
            resolved = os.path.realpath(os.path.join(self._real_root, posixpath.dirname(path), link))
            if not _inside(self._real_root, resolved):
                raise UnsafeArchiveEntryError(
                    f"{self._label}: symbolic link {path} -> {link} leaves the tree"
                )
            try:
                os.symlink(link, target)
            except FileExistsError:
                raise UnsafeArchiveEntryError(f"{self._label}: entry {path} appears more than once") from None
        for path, mtime in sorted(self._directories.items(), reverse=True):  # children's writes came first
            os.utime(self._root / path, (mtime, mtime), follow_symlinks=False)


def unpack_tree(source: BinaryIO, root: Path, label: str) -> None:
    """Unpack an uncompressed tar archive read sequentially from ``source`` into the empty directory ``root``.

    Args:
        source: the archive's bytes, read from its first to its last byte (no seeking).
        root: an existing, empty directory.
        label: names the archive in messages.

    Raises:
        UnsafeArchiveEntryError: a member the rules above refuse (``root`` is left partly filled; the caller
            removes it).
        tarfile.TarError, OSError: the archive cannot be read or a file not written.
    """
    unpacker = _Unpacker(root, label)
    with tarfile.open(fileobj=source, mode="r|") as archive:
        for member in archive:
            unpacker.member(archive, member)
    unpacker.finish()
