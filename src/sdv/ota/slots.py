"""Slot backends: where payloads are staged, one A/B pair per slot group.

* :class:`ImageSlotGroup`: a raw image written to a block device or an image file (``/dev/mmcblk0p3``,
  ``rootfs.b.img``), streamed chunk by chunk and ``fsync``-ed before the slot counts as staged. Which image
  runs is the bootloader's choice (:mod:`sdv.ota.boot`); switching is no business of the slot.
* :class:`TreeSlotGroup`: a directory tree for application updates. ``ROOT/A`` and ``ROOT/B`` hold the two
  trees and ``ROOT/current`` is a symbolic link to the live one, switched atomically by renaming a new link
  over it. A verified tar archive is unpacked (by :mod:`sdv.ota.unpack`) into ``ROOT/.B.new``, ``fsync``-ed and only then renamed to
  ``ROOT/B``, so a tree is either complete or absent.

Invariants: a writer writes only the slot it was opened for, and the update agent opens writers only for the
inactive slot (it refuses the active one); a writer that is aborted or never finished leaves the slot marked as
nothing but staging in the agent's record.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
import tarfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import BinaryIO

from sdv.ota.agent_state import SlotName
from sdv.ota.errors import InsufficientSpaceError, SlotError, UnsafeArchiveEntryError
from sdv.ota.manifest import Payload
from sdv.ota.store import fsync_directory
from sdv.ota.unpack import unpack_tree

__all__ = ["ImageSlotGroup", "SlotGroup", "SlotWriter", "TreeSlotGroup", "tree_digest"]

_logger = logging.getLogger(__name__)
_CHUNK = 1024 * 1024


def _free_bytes(directory: Path) -> int:
    return shutil.disk_usage(directory).free


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
        """Stop writing; leave no partial tree behind (an image slot keeps its bytes, it is only staging)."""


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
    def writer(self, slot: SlotName, payload: Payload) -> SlotWriter:
        """A writer for ``payload`` into ``slot``."""

    @abstractmethod
    def switch(self, slot: SlotName) -> None:
        """Make ``slot`` the live one where the group itself decides (trees); a no-op for images."""

    @abstractmethod
    def digest(self, slot: SlotName) -> str:
        """A SHA-256 of the slot's content (image bytes, or tree paths, kinds, contents and links)."""


class _ImageWriter(SlotWriter):
    def __init__(self, path: Path, handle: BinaryIO) -> None:
        self._path = path
        self._handle = handle

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
            self._handle.close()


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
        if payload.size > capacity:
            raise InsufficientSpaceError(
                f"slot {self.name}.{slot} ({path}): payload {payload.name} needs {payload.size} bytes, "
                f"{capacity} available"
            )

    def writer(self, slot: SlotName, payload: Payload) -> SlotWriter:
        path = self.paths[slot]
        try:
            # a block device is written in place; an image file is replaced from its first byte
            handle = path.open("r+b") if self._is_device(slot) else path.open("wb")
        except OSError as error:
            raise SlotError(f"slot {self.name}.{slot}: cannot open {path}: {error.strerror}") from error
        return _ImageWriter(path, handle)

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
    def __init__(self, group: TreeSlotGroup, slot: SlotName) -> None:
        self._group = group
        self._slot = slot
        self._archive = group.root / f".{slot}.incoming.tar"
        self._handle = self._archive.open("wb")

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        try:
            self._handle.write(chunk)
        except OSError as error:
            raise SlotError(f"{self._archive}: write failed: {error.strerror}") from error

    def finish(self) -> None:
        try:
            self._handle.close()
        except OSError as error:
            raise SlotError(f"{self._archive}: write failed: {error.strerror}") from error
        root = self._group.root
        new = root / f".{self._slot}.new"
        old = root / f".{self._slot}.old"
        for leftover in (new, old):
            shutil.rmtree(leftover, ignore_errors=True)
        new.mkdir()
        try:
            with self._archive.open("rb") as archive:
                # the archive passed sdv.ota.archive's checks; the unpacker applies them again itself
                unpack_tree(archive, new, f"slot {self._group.name}.{self._slot}")
        except UnsafeArchiveEntryError:
            shutil.rmtree(new, ignore_errors=True)
            raise
        except (OSError, tarfile.TarError) as error:
            shutil.rmtree(new, ignore_errors=True)
            raise SlotError(f"slot {self._group.name}.{self._slot}: cannot unpack: {error}") from error
        _fsync_tree(new)
        target = root / self._slot
        if target.exists():
            target.rename(old)
        new.rename(target)
        fsync_directory(root)
        shutil.rmtree(old, ignore_errors=True)
        self._archive.unlink(missing_ok=True)
        _logger.info("tree slot %s unpacked", target)

    def abort(self) -> None:
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
        self.root.mkdir(parents=True, exist_ok=True)
        needed = 2 * payload.size  # the archive and the unpacked tree exist side by side for a moment
        free = _free_bytes(self.root)
        if needed > free:
            raise InsufficientSpaceError(
                f"slot {self.name}.{slot} ({self.root}): payload {payload.name} needs {needed} bytes "
                f"to unpack, {free} free"
            )

    def writer(self, slot: SlotName, payload: Payload) -> SlotWriter:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            return _TreeWriter(self, slot)
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
