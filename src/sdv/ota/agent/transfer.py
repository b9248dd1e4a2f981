"""The transfer store: the partially received bundle file of the update agent.

Invariants:

* a transfer begins with the bundle's signed header, which the agent verified first (header-first transfer):
  :meth:`TransferStore.begin` writes it as the file's first bytes, so the received file starts with exactly the
  header that was verified, and the upload continues right after it;
* a chunk is accepted only at exactly the offset the file was written up to, for the announced bundle, within
  its size and the chunk limit;
* durability is batched: bytes are ``fsync``-ed once ``sync_interval_bytes`` were written since the last
  ``fsync`` or ``sync_interval_s`` passed, at the bundle's last byte, and when the agent calls :meth:`sync` (the
  end of an upload stream); only then does the returned record's offset advance, and the agent persists it
  afterwards, so a persisted offset never exceeds the bytes on disk;
* after a restart :meth:`TransferStore.resume` truncates the file to the persisted offset: bytes written but
  never covered by a persisted offset are dropped, and the upload continues from there;
* a transfer begins only when the bundle's size is within the limits and the directory keeps its reserve of
  free space afterwards;
* uncompressed slot images are not kept in the file: their bytes go straight into the inactive slot as they
  arrive (:mod:`sdv.ota.agent.placement`), made durable by the same ``fsync`` batches, so the bundle is never on
  disk twice; the file holds holes there, and :meth:`TransferStore.reader` reads the bundle back whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from sdv.ota.agent.config import TransferConfig
from sdv.ota.agent.placement import BundleReader, PlacedFiles, Placement, placement_at
from sdv.ota.agent.state import TransferRecord
from sdv.ota.bundle.config import OtaLimits
from sdv.ota.bundle.store import hash_file
from sdv.ota.errors import BundleFormatError, InsufficientSpaceError, SizeLimitError, TransferOffsetError

__all__ = ["TransferStore"]

_logger = logging.getLogger(__name__)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HEADER_FIXED_BYTES = 16  # magic and the two section lengths (ota/bundle-format.md, section 1)


class TransferStore:
    """The bundle being received, in ``DIRECTORY/incoming.sdvota``.

    Args:
        directory: the agent's state directory.
        config: transfer limits.
        limits: bundle limits (the largest acceptable bundle follows from them).
        clock: monotonic seconds, for ``sync_interval_s``.

    Attributes:
        appended_bytes: bytes :meth:`append` accepted since the store was created (received after the header).
    """

    def __init__(
        self,
        directory: Path,
        config: TransferConfig,
        limits: OtaLimits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = directory / "incoming.sdvota"
        self._directory = directory
        self._config = config
        self._largest = (
            limits.max_total_payload_bytes
            + limits.max_manifest_bytes
            + limits.max_signatures_bytes
            + _HEADER_FIXED_BYTES
        )
        self._handle: BinaryIO | None = None
        self._written: int | None = None  # the file's bytes up to here are written (not all fsync-ed)
        self._clock = clock
        self._synced_at = clock()
        self._placed = PlacedFiles(())
        # SHA-256 of the bundle's bytes up to _hashed_to, as they were received
        self._running: hashlib._Hash | None = None
        self._hashed_to = 0
        self.appended_bytes = 0

    @property
    def placements(self) -> tuple[Placement, ...]:
        """The payload ranges received straight into slots."""
        return self._placed.placements

    def place(self, placements: Sequence[Placement]) -> None:
        """Say which ranges of the transfer in progress go straight into slots (after a restart: as it began)."""
        self.close()
        self._placed = PlacedFiles(placements)
        self._running = None

    def placed_at(self, offset: int) -> bool:
        """Whether a payload starting at ``offset`` is received straight into its slot."""
        return any(placement.start == offset for placement in self.placements)

    def check_announcement(self, size: int, bundle_sha256: str) -> None:
        """Refuse a transfer whose size or id cannot be a bundle's, or which is larger than the limits allow.

        Raises:
            TransferOffsetError: a size below 1 or an id that is not a lowercase hex SHA-256.
            SizeLimitError: a bundle larger than the limits allow.
        """
        if size < 1 or not _SHA256.match(bundle_sha256):
            raise TransferOffsetError(
                f"a transfer needs a size of at least 1 byte and a lowercase hex SHA-256, got {size} and "
                f"{bundle_sha256[:80]!r}"
            )
        if size > self._largest:
            raise SizeLimitError(f"a bundle of {size} bytes exceeds the limit of {self._largest} bytes")

    def begin(
        self, size: int, bundle_sha256: str, header: bytes, placements: Sequence[Placement] = ()
    ) -> TransferRecord:
        """Check a new transfer and create its file, holding the verified header; empty the image files of
        ``placements``, the payloads received straight into slots.

        Returns:
            The transfer, at the offset after the header.

        Raises:
            TransferOffsetError: a size below 1 or an id that is not a lowercase hex SHA-256.
            SizeLimitError: a bundle larger than the limits allow.
            InsufficientSpaceError: the directory would keep less than its reserve of free space.
        """
        self.check_announcement(size, bundle_sha256)
        free = shutil.disk_usage(self._directory).free
        kept = size - sum(placement.size for placement in placements)
        needed = kept + self._config.min_free_bytes
        if needed > free:
            raise InsufficientSpaceError(
                f"{self._directory}: a bundle of {size} bytes needs {needed} bytes free "
                f"(with a reserve of {self._config.min_free_bytes}), {free} are free"
            )
        if len(header) >= size:
            raise TransferOffsetError(f"a bundle of {size} bytes cannot hold a header of {len(header)} bytes")
        self.place(placements)
        self._placed.start_fresh()
        self._running, self._hashed_to = hashlib.sha256(header), len(header)
        with self.path.open("wb") as handle:
            handle.write(header)
            handle.flush()
            os.fsync(handle.fileno())
        return TransferRecord(bundle_sha256=bundle_sha256, size=size, offset=len(header))

    def check_header(self, transfer: TransferRecord, header: bytes) -> None:
        """Refuse a resumed transfer whose header is not the one it began with.

        Raises:
            BundleFormatError: the received file does not start with ``header``.
        """
        with self.path.open("rb") as handle:
            start = handle.read(min(len(header), transfer.offset))
        if start != header[: len(start)]:
            raise BundleFormatError(
                f"bundle {transfer.bundle_sha256[:16]}: the header differs from the one its transfer began with"
            )

    def append(
        self, transfer: TransferRecord, bundle_sha256: str, offset: int, data: bytes
    ) -> TransferRecord:
        """Write a chunk; returns the transfer with its offset at what is durable now (persist it when it moved).

        Raises:
            TransferOffsetError: another bundle, another offset than the written one, too large, past the end.
        """
        if bundle_sha256 != transfer.bundle_sha256:
            raise TransferOffsetError(
                f"chunk for bundle {bundle_sha256[:16]}, the transfer in progress is {transfer.bundle_sha256[:16]}"
            )
        written = transfer.offset if self._written is None else self._written
        if offset != written:
            raise TransferOffsetError(f"chunk at offset {offset}, the agent continues at {written}")
        if len(data) > self._config.max_chunk_bytes:
            raise TransferOffsetError(
                f"chunk of {len(data)} bytes exceeds {self._config.max_chunk_bytes} bytes"
            )
        if offset + len(data) > transfer.size:
            raise TransferOffsetError(
                f"chunk ends at {offset + len(data)}, past the bundle's {transfer.size} bytes"
            )
        self._write(offset, memoryview(data))
        if self._running is not None and offset == self._hashed_to:
            self._running.update(data)  # hashed as it arrives: no second read at the last byte
            self._hashed_to += len(data)
        else:  # a resumed transfer: the bundle is read back whole at the last byte
            self._running = None
        self._written = offset + len(data)
        self.appended_bytes += len(data)
        config = self._config
        if (
            self._written == transfer.size
            or self._written - transfer.offset >= config.sync_interval_bytes
            or self._clock() - self._synced_at >= config.sync_interval_s
        ):
            return self.sync(transfer)
        return transfer

    def _write(self, offset: int, data: memoryview) -> None:
        """Write the bundle's bytes from ``offset``: placed ranges into their slots, the rest into the file."""
        if self._handle is None:
            self._handle = self.path.open("r+b")
        while data:
            placement, run_end = placement_at(self.placements, offset)
            count = min(len(data), run_end - offset)
            if placement is None:
                self._handle.seek(offset)
                self._handle.write(data[:count])
            else:
                self._placed.write(placement, offset, data[:count])
            data, offset = data[count:], offset + count

    def sync(self, transfer: TransferRecord) -> TransferRecord:
        """``fsync`` what was written; returns the transfer with its offset advanced to it (to persist next)."""
        if self._handle is None or self._written is None or self._written == transfer.offset:
            return transfer
        self._handle.flush()
        if os.fstat(self._handle.fileno()).st_size < self._written:  # it ended in a placed range: a hole
            self._handle.truncate(self._written)
        self._placed.sync()
        os.fsync(self._handle.fileno())  # the bytes are on disk before the offset that covers them is
        self._synced_at = self._clock()
        return transfer.model_copy(update={"offset": self._written})

    def digest(self) -> str:
        """SHA-256 of the received bundle: hashed as it arrived when it arrived in one run of this process,
        else read back (in chunks, placed ranges from their slots)."""
        self.close()
        size = self.path.stat().st_size if self.path.exists() else -1
        if self._running is not None and self._hashed_to == size:
            return self._running.hexdigest()
        if not self.placements:
            return hash_file(self.path)[1]
        digest = hashlib.sha256()
        with self.reader() as stream:
            while chunk := stream.read(1024 * 1024):
                digest.update(chunk)
        return digest.hexdigest()

    @contextlib.contextmanager
    def reader(self) -> Iterator[io.BufferedReader]:
        """The received bundle as one stream from its first byte (placed ranges read from their slots)."""
        self.close()
        with BundleReader.opened(self.path, self.placements) as stream:
            yield stream

    def resume(self, transfer: TransferRecord) -> TransferRecord:
        """After a restart: truncate the file to the persisted offset; returns the transfer to continue."""
        self.close()
        on_disk = self.path.stat().st_size if self.path.exists() else -1
        if on_disk < transfer.offset:  # only if fsync broke its promise; start over then
            _logger.warning(
                "%s holds %d bytes, less than the persisted offset %d", self.path, on_disk, transfer.offset
            )
            transfer = transfer.model_copy(update={"offset": 0})
        with self.path.open("ab") as handle:
            handle.truncate(transfer.offset)
            os.fsync(handle.fileno())
        self._placed.cut(transfer.offset)
        return transfer

    def discard(self, *, staged: bool = False) -> None:
        """Remove the file, and empty the image files bytes were placed in (unless ``staged``: the bundle was
        installed, and the placed bytes are the staged slots' content now)."""
        self.close()
        self.path.unlink(missing_ok=True)
        if not staged:
            self._placed.empty()
        self._placed = PlacedFiles(())

    def close(self) -> None:
        """Close the file if it is open for writing (bytes not yet synced are dropped at the next resume)."""
        self._written = None
        self._placed.close()
        if self._handle is not None:
            self._handle.close()
            self._handle = None
