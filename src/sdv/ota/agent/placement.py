"""Payload bytes placed straight into their slot while a bundle is received, so the bundle is never held twice.

A :class:`Placement` says that bytes ``[start, start + size)`` of the bundle being received are an uncompressed
slot image written into the inactive side of its slot group (an image file or a block device), from the slot's
first byte, instead of into the received bundle file. That file keeps the header and every other payload (file
trees, compressed payloads) at their own offsets; the placed ranges are holes in it.

Invariants:

* only the inactive side is written: the side the transfer places into is the other side of the group's
  committed one, which cannot change while a transfer is under way (activation needs a staged bundle);
* placed bytes are ``fsync``-ed together with the received file, before the offset covering them is persisted,
  so a power loss leaves at least the persisted offset's bytes in place in both;
* :class:`BundleReader` reads the whole bundle back, each range from where it lies, so the transfer's SHA-256
  and the verifier see exactly the bytes that were received;
* a placement counts for nothing until the whole bundle verified: the slot is staged only by the install step.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from sdv.ota.errors import SlotError

__all__ = ["BundleReader", "PlacedFiles", "Placement", "is_block_device", "placement_at"]


def is_block_device(path: Path) -> bool:
    """Whether ``path`` is a block device (written in place, never truncated)."""
    return path.exists() and stat.S_ISBLK(path.stat().st_mode)


@dataclass(frozen=True)
class Placement:
    """A payload received straight into a slot image.

    Attributes:
        start: the payload's offset in the bundle.
        size: its length.
        path: the inactive side's image file or block device.
    """

    start: int
    size: int
    path: Path

    @property
    def end(self) -> int:
        """The bundle offset just past the payload."""
        return self.start + self.size


def placement_at(placements: Sequence[Placement], position: int) -> tuple[Placement | None, int]:
    """The placement holding bundle byte ``position`` (or ``None``) and the offset where that run ends."""
    following = 1 << 62
    for placement in placements:
        if placement.start <= position < placement.end:
            return placement, placement.end
        if position < placement.start < following:
            following = placement.start
    return None, following


class PlacedFiles:
    """The open slot images of a transfer's placements."""

    def __init__(self, placements: Sequence[Placement]) -> None:
        self.placements = tuple(placements)
        self._handles: dict[Path, BinaryIO] = {}

    def start_fresh(self) -> None:
        """Empty every image file (a new transfer writes them from their first byte)."""
        self._empty_files(create=True)

    def write(self, placement: Placement, position: int, data: memoryview) -> None:
        """Write ``data``, the bundle's bytes from ``position``, into the placement's slot."""
        handle = self._handles.get(placement.path)
        try:
            if handle is None:
                mode = "r+b" if placement.path.exists() else "w+b"
                handle = self._handles[placement.path] = cast(BinaryIO, placement.path.open(mode))
            handle.seek(position - placement.start)
            handle.write(data)
        except OSError as error:
            raise SlotError(f"{placement.path}: write failed: {error.strerror}") from error

    def sync(self) -> None:
        """``fsync`` every image written since the last call."""
        for path, handle in self._handles.items():
            try:
                handle.flush()
                os.fsync(handle.fileno())
            except OSError as error:
                raise SlotError(
                    f"{path}: cannot make the received bytes durable: {error.strerror}"
                ) from error

    def cut(self, offset: int) -> None:
        """After a restart: drop what an image file holds past the bundle offset ``offset`` (never persisted)."""
        self.close()
        for placement in self.placements:
            if placement.start < offset < placement.end and not is_block_device(placement.path):
                with contextlib.suppress(FileNotFoundError), placement.path.open("r+b") as handle:
                    handle.truncate(offset - placement.start)

    def empty(self) -> None:
        """A discarded transfer: image files keep nothing of it (a block device cannot shrink)."""
        self._empty_files(create=False)

    def _empty_files(self, *, create: bool) -> None:
        self.close()
        for placement in self.placements:
            path = placement.path
            if is_block_device(path) or not (create or path.exists()):
                continue
            try:
                path.open("wb").close()
            except OSError as error:
                raise SlotError(f"{path}: cannot reset the slot image: {error.strerror}") from error

    def close(self) -> None:
        """Close the open images (unsynced bytes count for nothing)."""
        for handle in self._handles.values():
            with contextlib.suppress(OSError):
                handle.close()
        self._handles.clear()


class BundleReader(io.RawIOBase):
    """The received bundle read from its first byte: placed ranges from their slots, the rest from the file.

    Args:
        path: the received bundle file (header, unplaced payloads, holes where payloads were placed).
        placements: the placed ranges.
    """

    def __init__(self, path: Path, placements: Sequence[Placement]) -> None:
        self._placements = tuple(placements)
        self._position = 0
        self._files: dict[Path, BinaryIO] = {}
        self._bundle = cast(BinaryIO, path.open("rb"))

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET, /) -> int:
        if whence != os.SEEK_SET:  # the verifier seeks back to the start only
            raise io.UnsupportedOperation("the received bundle seeks from its start only")
        self._position = offset
        return offset

    def tell(self) -> int:
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        placement, run_end = placement_at(self._placements, self._position)
        wanted = min(len(view), run_end - self._position)
        if placement is None:
            handle, at = self._bundle, self._position
        else:
            handle = self._files.get(placement.path) or self._open(placement.path)
            at = self._position - placement.start
        handle.seek(at)
        count = handle.readinto(view[:wanted]) or 0  # type: ignore[attr-defined]
        self._position += count
        return count

    def _open(self, path: Path) -> BinaryIO:
        handle = self._files[path] = cast(BinaryIO, path.open("rb"))
        return handle

    def close(self) -> None:
        for handle in (*self._files.values(), self._bundle):
            handle.close()
        super().close()

    @classmethod
    @contextlib.contextmanager
    def opened(cls, path: Path, placements: Sequence[Placement]) -> Iterator[io.BufferedReader]:
        """The bundle as a buffered stream, closed afterwards."""
        reader = cls(path, placements)
        with io.BufferedReader(cast(Any, reader), 64 * 1024) as stream:
            yield stream
