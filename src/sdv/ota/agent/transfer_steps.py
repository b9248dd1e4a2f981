"""The update agent's transfer steps: a bundle's header verified first, then its bytes at the persisted offset
(uncompressed slot images straight into the inactive slot), made durable in batches, and the whole bundle's
SHA-256 checked at the last byte."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from sdv.ota.agent.base import AgentBase
from sdv.ota.agent.placement import Placement
from sdv.ota.agent.records import journaled
from sdv.ota.agent.slots import ImageSlotGroup
from sdv.ota.agent.state import (
    AT_REST,
    AgentState,
    TransferRecord,
    other_slot,
    updated,
)
from sdv.ota.bundle.format import read_header
from sdv.ota.bundle.manifest import Manifest
from sdv.ota.bundle.store import (
    hash_file,
    read_bundle_header,
)
from sdv.ota.errors import (
    AgentStateError,
    BundleFormatError,
    OtaError,
    TransferInProgressError,
)

__all__ = ["TransferSteps"]

_logger = logging.getLogger(__name__)
_S = AgentState


class TransferSteps(AgentBase):
    """Receiving a bundle (``Idle`` → ``Transferring`` → ``Transferred``)."""

    @journaled("begin a transfer")
    def begin_transfer(self, size: int, bundle_sha256: str, header: bytes) -> TransferRecord:
        """Verify a bundle's header and start receiving it, or find the transfer of the same bundle to resume.

        Args:
            size: the bundle's length.
            bundle_sha256: SHA-256 of the whole bundle (lowercase hex), the transfer's id.
            header: the bundle's header (magic, manifest section, signature section), verified before any
                payload byte is accepted; it becomes the received file's first bytes.

        Returns:
            The transfer, whose ``offset`` is where the upload continues (after the header for a new one).

        Raises:
            TransferInProgressError: another bundle is being received.
            AgentStateError: an update is under way (staged, activating, on trial).
            VerificationError: the header is refused (no header, signatures, expiry, hardware id, counters,
                sizes, a slot the ECU lacks, or another header than a resumed transfer began with).
            InsufficientSpaceError: the state directory or a slot has not enough free space.
            TransferOffsetError: a size or id that cannot be a bundle's.
            SizeLimitError: the bundle is larger than the limits allow.
        """
        with self._mutex:
            record = self._record
            self.transfers.check_announcement(size, bundle_sha256)
            if record.state in (_S.TRANSFERRING, _S.TRANSFERRED) and record.transfer is not None:
                if record.transfer.bundle_sha256 == bundle_sha256 and record.transfer.size == size:
                    self._admit(header, size, bundle_sha256)
                    self.sync_transfer()
                    transfer = self._record.transfer
                    if transfer is None:  # pragma: no cover - syncing keeps the transfer
                        raise AgentStateError("no transfer is in progress")
                    self.transfers.check_header(transfer, header)
                    return transfer  # resume (a received bundle: nothing left to send)
                raise TransferInProgressError(
                    f"a transfer of bundle {record.transfer.bundle_sha256[:16]} is in progress "
                    f"({record.transfer.offset} of {record.transfer.size} bytes); cancel it first"
                )
            if record.state not in AT_REST:
                raise AgentStateError(
                    f"cannot begin a transfer in state {record.state}: an update is under way; finish or cancel it"
                )
            manifest = self._admit(header, size, bundle_sha256)
            placements = self._placements(manifest, len(header))
            transfer = self.transfers.begin(size, bundle_sha256, header, placements)
            self._go(_S.TRANSFERRING, transfer=transfer, bundle=None, failure=None)
            return transfer

    def _placements(self, manifest: Manifest, header_length: int) -> list[Placement]:
        """The payloads received straight into the inactive side of their slot: uncompressed slot images, one
        per group (``transfer.stream_to_slots``)."""
        placements: list[Placement] = []
        if not self.config.transfer.stream_to_slots:
            return placements
        offset, placed = header_length, set()
        for payload in manifest.payloads:
            group = self._group_for(payload, manifest.name)
            if isinstance(group, ImageSlotGroup) and payload.compression is None and group.name not in placed:
                side = other_slot(self._record.groups[group.name].active_slot)
                placements.append(Placement(offset, payload.size, group.paths[side]))
                placed.add(group.name)
            offset += payload.size
        return placements

    def _restore_placements(self) -> None:
        """After a start with a bundle received or being received: where its placed payloads lie, as when its
        transfer began (the header in the file was verified then)."""
        if self._record.transfer is None or not self.incoming.exists():
            return
        try:
            with self.incoming.open("rb") as handle:
                header = read_header(handle, "received bundle", self.config.limits)
            manifest = header.parse_manifest("received bundle")
            self.transfers.place(self._placements(manifest, header.encoded_length))
        except (OSError, OtaError) as error:  # the install's verification refuses such a file with the reason
            _logger.warning("%s: %s", self.incoming, error)

    def _admit(self, header: bytes, size: int, bundle_sha256: str) -> Manifest:
        """Everything the header alone decides, through the verifier's one header check, and slot space."""
        source = f"bundle {bundle_sha256[:16]}"
        if not header:
            raise BundleFormatError(
                f"{source}: the transfer carries no bundle header; this agent verifies the signed header "
                "before it accepts payload bytes (send the header with BeginTransfer, as sdv ota push does)"
            )
        manifest = self._verifier().verify_header_bytes(header, source, bundle_size=size)
        for payload in manifest.payloads:
            group = self._group_for(payload, source)
            group.check_space(other_slot(self._record.groups[group.name].active_slot), payload)
        return manifest

    def sync_transfer(self) -> None:
        """Make the bytes received so far durable and persist the offset covering them."""
        with self._mutex:
            transfer = self._record.transfer
            if self._record.state is _S.TRANSFERRING and transfer is not None:
                synced = self.transfers.sync(transfer)
                if synced != transfer:
                    self._persist(updated(self._record, transfer=synced))

    @contextlib.contextmanager
    def upload(self) -> Iterator[None]:
        """Hold the one upload lease while a client streams chunks.

        Raises:
            TransferInProgressError: another upload is streaming.
        """
        with self._mutex:
            if self._uploading:
                error = TransferInProgressError(
                    "another upload is streaming to this agent; try again when it ends"
                )
                self.records.refused("upload", error, self._record.state)
                raise error
            self._uploading = True
        try:
            yield
        finally:
            with self._mutex:
                self._uploading = False
                try:
                    self.sync_transfer()  # the end of every upload stream is durable
                finally:
                    self.transfers.close()

    @journaled("receive bundle data")
    def write_chunk(self, bundle_sha256: str, offset: int, data: bytes) -> TransferRecord:
        """Append the bytes at ``offset`` to the bundle being received; persist the offset when it became durable.

        When the last byte arrives, the whole file's SHA-256 is checked against the transfer's id: the state
        becomes ``Transferred``, or ``Failed`` (and the file is removed) when it differs.

        Raises:
            AgentStateError: no transfer is in progress.
            TransferOffsetError: another bundle, another offset than the persisted one, or past the end.
        """
        with self._mutex:
            self._require("receive bundle data", _S.TRANSFERRING)
            transfer = self._record.transfer
            if transfer is None:  # pragma: no cover - a record in Transferring always has its transfer
                raise AgentStateError("no transfer is in progress")
            durable = self.transfers.append(transfer, bundle_sha256, offset, data)
            if durable != transfer:
                self._persist(updated(self._record, transfer=durable))
            transfer = durable
            if transfer.offset == transfer.size:
                self._complete_transfer(transfer)
            return transfer

    def _complete_transfer(self, transfer: TransferRecord) -> None:
        digest = self.transfers.digest()
        if digest != transfer.bundle_sha256:
            self.transfers.discard()
            self._go(
                _S.FAILED,
                transfer=None,
                failure=f"received bundle has SHA-256 {digest}, the transfer announced {transfer.bundle_sha256}",
            )
            return
        self._go(_S.TRANSFERRED)

    def receive_file(self, path: Path, chunk_bytes: int | None = None) -> TransferRecord:
        """Transfer a local bundle file (``sdv ota install``), resuming an interrupted transfer of it, in chunks of
        ``chunk_bytes`` (default: the configured largest chunk, at most 1 MiB)."""
        chunk_bytes = chunk_bytes or min(1024 * 1024, self.config.transfer.max_chunk_bytes)
        size, digest = hash_file(path)
        transfer = self.begin_transfer(size, digest, read_bundle_header(path, self.config.limits).encode())
        with self.upload(), path.open("rb") as source:
            offset = source.seek(transfer.offset)
            while data := source.read(chunk_bytes):
                transfer = self.write_chunk(digest, offset, data)
                offset += len(data)
        return transfer
