"""Slot backends: where payloads are staged, one A/B pair per slot group.

* :class:`ImageSlotGroup`: a raw image written to a block device or an image file (``/dev/mmcblk0p3``,
  ``rootfs.b.img``), streamed chunk by chunk and ``fsync``-ed before the slot counts as staged. Which image
  runs is the bootloader's choice (:mod:`sdv.ota.agent.boot`); switching is no business of the slot.
* :class:`TreeSlotGroup`: a directory tree for application updates. ``ROOT/A`` and ``ROOT/B`` hold the two
  trees and ``ROOT/current`` is a symbolic link to the live one, switched atomically by renaming a new link
  over it. The verified tar archive is read from where it already lies (the received bundle, a
  :class:`PayloadOrigin`; it is never copied), its space need counted in the file system's own blocks and
  inodes, then unpacked (by :mod:`sdv.ota.agent.unpack`) into ``ROOT/.B.new``, ``fsync``-ed and only then renamed to
  ``ROOT/B``, so a tree is either complete or absent.

Invariants: a writer writes only the slot it was opened for, and the update agent opens writers only for the
inactive slot (it refuses the active one); a writer that is aborted or never finished leaves the slot marked as
nothing but staging in the agent's record.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import logging
import os
import shutil
import stat
import tarfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from sdv.ota.agent.state import SlotName
from sdv.ota.agent.unpack import unpack_tree
from sdv.ota.bundle.compression import DecodingReader
from sdv.ota.bundle.config import DEFAULT_LIMITS
from sdv.ota.bundle.manifest import Payload, PayloadCompression
from sdv.ota.bundle.store import fsync_directory
from sdv.ota.errors import InsufficientSpaceError, SlotError, VerificationError

__all__ = [
    "ImageSlotGroup",
    "PayloadOrigin",
    "SlotGroup",
    "SlotWriter",
    "TreeSlotGroup",
    "tree_digest",
    "tree_space_needed",
]

_logger = logging.getLogger(__name__)
_CHUNK = 1024 * 1024


def _free_bytes(directory: Path) -> int:
    return shutil.disk_usage(directory).free


@dataclass(frozen=True)
class PayloadOrigin:
    """Where a payload's verified bytes lie: ``size`` bytes from ``offset`` in the file ``path``, compressed as
    ``compression`` says (``None``: stored as is).

    Attributes:
        max_decoder_memory: the decoder's memory limit for a compressed payload.
    """

    path: Path
    offset: int
    size: int
    compression: PayloadCompression | None = None
    max_decoder_memory: int = DEFAULT_LIMITS.max_decoder_memory_bytes

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """The payload's content as a file that ends where the payload ends (decompressed as it is read, never
        past its signed decompressed size)."""
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            region = cast(BinaryIO, _Region(handle, self.size))
            if self.compression is None:
                yield region
                return
            packed = self.compression
            reader = DecodingReader(
                region, packed.algorithm, packed.size, str(self.path), max_memory=self.max_decoder_memory
            )
            yield cast(BinaryIO, io.BufferedReader(reader, _CHUNK))


class _Region(io.RawIOBase):
    """At most ``size`` bytes of ``handle`` from its current position."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle = handle
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        count = self._handle.readinto(view[: min(len(view), self._left)])  # type: ignore[attr-defined]
        self._left -= count or 0
        return count or 0


def tree_space_needed(source: BinaryIO, block_size: int) -> tuple[int, int]:
    """Bytes and inodes an archive's tree takes on a file system with ``block_size`` blocks.

    Each regular file takes its size rounded up to whole blocks, each member an inode, each directory and
    symbolic link one block (their entries and link targets), so a tree of many small files is counted at
    its real cost rather than its archive's size.
    """
    blocks = inodes = 0
    with tarfile.open(fileobj=source, mode="r|") as archive:
        for member in archive:
            inodes += 1
            blocks += -(-member.size // block_size) if member.isreg() else 1
    return blocks * block_size, inodes


class SlotWriter(ABC):
    """Receives one payload's bytes, in order, for one slot."""

    @abstractmethod
    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Write the next bytes."""

    @abstractmethod
    def finish(self) -> None:
        """Make the payload durable and complete in the slot (called only after it verified)."""

    @abstractmethod
    def abort(self) -> None:
        """Stop writing; leave no partial tree or image file behind (a block device keeps what was written: it
        is only staging)."""


class SlotGroup(ABC):
    """An A/B pair of slots that payloads of one target are installed into.

    Args:
        name: the group's name (for image groups, the manifest's ``slot``).
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def check_space(self, slot: SlotName, payload: Payload) -> None:
        """Refuse a payload the slot cannot hold (:class:`InsufficientSpaceError`)."""

    @abstractmethod
    def writer(self, slot: SlotName, payload: Payload, origin: PayloadOrigin | None = None) -> SlotWriter:
        """A writer for ``payload`` into ``slot``; ``origin`` says where its verified bytes will lie, for
        groups that read them from there instead of being handed each chunk (trees)."""

    @abstractmethod
    def switch(self, slot: SlotName) -> None:
        """Make ``slot`` the live one where the group itself decides (trees); a no-op for images."""

    @abstractmethod
    def digest(self, slot: SlotName) -> str:
        """A SHA-256 of the slot's content (image bytes, or tree paths, kinds, contents and links)."""


class _ImageWriter(SlotWriter):
    def __init__(self, path: Path, handle: BinaryIO, *, truncate: bool) -> None:
        self._path = path
        self._handle = handle
        self._truncate = truncate

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        try:
            self._handle.write(chunk)
        except OSError as error:
            raise SlotError(f"{self._path}: write failed: {error.strerror}") from error

    def finish(self) -> None:
        handle = self._handle
        try:
            handle.flush()
            os.fsync(handle.fileno())
        except OSError as error:
            raise SlotError(f"{self._path}: cannot complete the image: {error.strerror}") from error
        finally:
            with contextlib.suppress(OSError):  # a failed flush is reported above
                handle.close()
        _logger.info("image slot %s written", self._path)

    def abort(self) -> None:
        with contextlib.suppress(OSError):  # the slot is abandoned anyway
            if self._truncate:  # an image file keeps nothing of a refused payload; a device cannot shrink
                self._handle.truncate(0)
            self._handle.close()


class _PlacedWriter(SlotWriter):
    """The payload already lies in the slot: the verifier reads it from there; nothing is written again."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """The bytes are in the slot already."""

    def finish(self) -> None:
        try:
            with self._path.open("rb") as handle:
                os.fsync(handle.fileno())
        except OSError as error:
            raise SlotError(f"{self._path}: cannot complete the image: {error.strerror}") from error
        _logger.info("image slot %s verified in place", self._path)

    def abort(self) -> None:
        """The transfer's own discard empties the image, if the bundle is given up."""


class ImageSlotGroup(SlotGroup):
    """Two raw image slots: block devices or image files.

    Args:
        name: the manifest's slot name.
        a: the device or file of slot A.
        b: the device or file of slot B.
    """

    def __init__(self, name: str, a: Path, b: Path) -> None:
        super().__init__(name)
        self.paths: dict[SlotName, Path] = {"A": a, "B": b}

    def _is_device(self, slot: SlotName) -> bool:
        path = self.paths[slot]
        return path.exists() and stat.S_ISBLK(path.stat().st_mode)

    def check_space(self, slot: SlotName, payload: Payload) -> None:
        path = self.paths[slot]
        if self._is_device(slot):
            with path.open("rb") as device:
                capacity = device.seek(0, os.SEEK_END)
        else:
            existing = path.stat().st_size if path.exists() else 0
            capacity = _free_bytes(path.parent) + existing
        if payload.installed_size > capacity:
            raise InsufficientSpaceError(
                f"slot {self.name}.{slot} ({path}): payload {payload.name} needs {payload.installed_size} bytes, "
                f"{capacity} available"
            )

    def writer(self, slot: SlotName, payload: Payload, origin: PayloadOrigin | None = None) -> SlotWriter:
        path = self.paths[slot]
        try:
            # a block device is written in place; an image file is replaced from its first byte
            handle = path.open("r+b") if self._is_device(slot) else path.open("wb")
        except OSError as error:
            raise SlotError(f"slot {self.name}.{slot}: cannot open {path}: {error.strerror}") from error
        return _ImageWriter(path, handle, truncate=not self._is_device(slot))

    def placed_writer(self, slot: SlotName) -> SlotWriter:
        """A writer for a payload whose bytes the transfer already placed in ``slot``
        (:mod:`sdv.ota.agent.placement`): it writes nothing, and makes the image durable when it verified."""
        return _PlacedWriter(self.paths[slot])

    def switch(self, slot: SlotName) -> None:
        """Images are switched by the bootloader."""

    def digest(self, slot: SlotName) -> str:
        digest = hashlib.sha256()
        path = self.paths[slot]
        if path.exists():
            with path.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
        return digest.hexdigest()


def tree_digest(root: Path) -> str:
    """SHA-256 over a directory tree's relative paths, entry kinds, file contents and link targets.

    Modes and times are left out, so a tree and the same tree unpacked elsewhere have the same digest.
    """
    digest = hashlib.sha256()
    if not root.is_dir():
        return digest.hexdigest()
    for directory, names, files in sorted(os.walk(root)):
        names.sort()
        base = Path(directory)
        for name in sorted([*names, *files]):
            path = base / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                digest.update(f"L {relative} -> {os.readlink(path)}\n".encode())
            elif path.is_dir():
                digest.update(f"D {relative}\n".encode())
            else:
                digest.update(f"F {relative}\n".encode())
                with path.open("rb") as handle:
                    while chunk := handle.read(_CHUNK):
                        digest.update(chunk)
    return digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    for directory, _names, files in os.walk(root):
        for name in files:
            path = Path(directory) / name
            if not path.is_symlink():
                descriptor = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
        fsync_directory(Path(directory))


class _TreeWriter(SlotWriter):
    """Unpacks a verified archive into a new tree, read from ``origin`` (or, without one, from the chunks it
    is handed, kept in ``ROOT/.SLOT.incoming.tar`` until the archive is complete)."""

    def __init__(self, group: TreeSlotGroup, slot: SlotName, origin: PayloadOrigin | None) -> None:
        self._group = group
        self._slot = slot
        self._label = f"slot {group.name}.{slot}"
        self._archive = group.root / f".{slot}.incoming.tar"
        self._origin = origin
        self._handle: BinaryIO | None = None if origin is not None else self._archive.open("wb")

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        if self._handle is None:
            return  # the bytes are read from their origin once verified
        try:
            self._handle.write(chunk)
        except OSError as error:
            raise SlotError(f"{self._archive}: write failed: {error.strerror}") from error

    def _source(self) -> PayloadOrigin:
        if self._handle is not None:
            try:
                self._handle.close()
            except OSError as error:
                raise SlotError(f"{self._archive}: write failed: {error.strerror}") from error
            return PayloadOrigin(self._archive, 0, self._archive.stat().st_size)
        if self._origin is None:  # pragma: no cover - one of the two is always set
            raise SlotError(f"{self._label}: no archive to unpack")
        return self._origin

    def _check_space(self, origin: PayloadOrigin) -> None:
        usage = os.statvfs(self._group.root)
        with origin.open() as archive:
            needed, inodes = tree_space_needed(archive, usage.f_frsize or usage.f_bsize)
        free = usage.f_bavail * usage.f_frsize
        if needed > free:
            raise InsufficientSpaceError(
                f"{self._label} ({self._group.root}): the tree needs {needed} bytes in "
                f"{usage.f_frsize}-byte blocks, {free} free"
            )
        if usage.f_files and inodes > usage.f_favail:
            raise InsufficientSpaceError(
                f"{self._label} ({self._group.root}): the tree has {inodes} entries, "
                f"the file system has {usage.f_favail} free inodes"
            )

    def finish(self) -> None:
        origin = self._source()
        self._check_space(origin)
        root = self._group.root
        new = root / f".{self._slot}.new"
        old = root / f".{self._slot}.old"
        for leftover in (new, old):
            shutil.rmtree(leftover, ignore_errors=True)
        new.mkdir()
        try:
            with origin.open() as archive:
                # the archive passed sdv.ota.bundle.archive's checks; the unpacker applies them again itself
                unpack_tree(archive, new, self._label)
            _fsync_tree(new)
        except VerificationError:  # an unsafe entry, or a compressed archive that does not decode
            shutil.rmtree(new, ignore_errors=True)
            raise
        except OSError as error:
            shutil.rmtree(new, ignore_errors=True)
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise InsufficientSpaceError(f"{self._label}: out of space while unpacking") from error
            raise SlotError(f"{self._label}: cannot unpack: {error}") from error
        except tarfile.TarError as error:
            shutil.rmtree(new, ignore_errors=True)
            raise SlotError(f"{self._label}: cannot unpack: {error}") from error
        target = root / self._slot
        if target.exists():
            target.rename(old)
        new.rename(target)
        fsync_directory(root)
        shutil.rmtree(old, ignore_errors=True)
        self._archive.unlink(missing_ok=True)
        _logger.info("tree slot %s unpacked", target)

    def abort(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):  # the tree is abandoned anyway
                self._handle.close()
        self._archive.unlink(missing_ok=True)


class TreeSlotGroup(SlotGroup):
    """Two directory trees below ``root`` and the ``current`` link naming the live one.

    Args:
        name: the group's name.
        path: the manifest's file-tree install path this group serves (such as ``/opt/apps``).
        root: the directory holding ``A``, ``B`` and ``current``.
    """

    def __init__(self, name: str, path: str, root: Path) -> None:
        super().__init__(name)
        self.path = path
        self.root = root

    @property
    def current(self) -> Path:
        """The link to the live tree."""
        return self.root / "current"

    def live(self) -> SlotName | None:
        """The slot ``current`` names (``None`` before the first switch)."""
        if not self.current.is_symlink():
            return None
        target = os.readlink(self.current)
        return "A" if target == "A" else "B" if target == "B" else None

    def check_space(self, slot: SlotName, payload: Payload) -> None:
        """The first check, from the header: the tree takes at least its archive's size (the exact need, in
        the file system's blocks and inodes, is counted from the verified archive before unpacking)."""
        self.root.mkdir(parents=True, exist_ok=True)
        free = _free_bytes(self.root)
        if payload.installed_size > free:
            raise InsufficientSpaceError(
                f"slot {self.name}.{slot} ({self.root}): payload {payload.name} needs at least {payload.installed_size} "
                f"bytes to unpack, {free} free"
            )

    def writer(self, slot: SlotName, payload: Payload, origin: PayloadOrigin | None = None) -> SlotWriter:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            return _TreeWriter(self, slot, origin)
        except OSError as error:
            raise SlotError(
                f"slot {self.name}.{slot}: cannot write in {self.root}: {error.strerror}"
            ) from error

    def switch(self, slot: SlotName) -> None:
        if self.live() == slot:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / slot).mkdir(exist_ok=True)
        temporary = self.root / ".current.tmp"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(slot)
        os.replace(temporary, self.current)
        fsync_directory(self.root)
        _logger.info("tree %s: current -> %s", self.root, slot)

    def digest(self, slot: SlotName) -> str:
        return tree_digest(self.root / slot)
