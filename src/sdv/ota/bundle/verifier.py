"""The bundle verifier: decides, without any I/O of its own, whether an ECU may install a bundle.

In the spirit of python-tuf's ``TrustedMetadataSet``, the verifier is built from the trusted state (trust
root, hardware id, installed release counter, trusted time) and then fed the untrusted bundle. It checks in
this fixed order and stops at the first failure with a specific error:

1. container header: magic, section lengths against the limits, canonical signature section
   (:class:`BundleFormatError`, :class:`SizeLimitError`);
2. the trust root itself is not expired (:class:`ExpiredError`);
3. signatures over the manifest bytes: in strict mode no bad signature by a key the trust root lists
   (:class:`BadSignatureError`); signatures by unlisted keys are ignored; then a threshold of *distinct*
   ``release`` keys (:class:`ThresholdNotMetError`); Uptane "Full verification", TUF client workflow "Update the
   targets role" (see :func:`~sdv.ota.bundle.trust.check_role_signatures`);
4. the manifest parses and is canonical (:class:`BundleFormatError`); only signed bytes are ever parsed;
5. expiry against the trusted time (:class:`ExpiredError`; freeze attack);
6. the ECU's hardware id is listed (:class:`HardwareIdMismatchError`; Uptane's hardware identifier check);
7. the release counter passes the rollback check (:class:`RollbackError`; rollback attack): strictly above the
   installed one, or per slot group as :mod:`sdv.ota.bundle.rollback` describes;
8. payload count and declared sizes (stored and decompressed) within the limits (:class:`SizeLimitError`;
   endless data), before any payload byte is read;
9. per payload, while streaming: length (:class:`LengthMismatchError`; partial bundle and endless data), then
   SHA-256 (:class:`HashMismatchError`; arbitrary software); for a compressed payload
   (:mod:`sdv.ota.bundle.compression`) the decompressed output is capped at its signed size while it streams
   (:class:`LengthMismatchError`; decompression bomb) and its length and SHA-256 are checked too; then for file
   trees the archive checks of :mod:`sdv.ota.bundle.archive` on the (decompressed) archive; a payload is never
   held in memory, only one chunk at a time;
10. nothing follows the last payload (:class:`LengthMismatchError`).

Streams are passed in already opened; the verifier reads them but opens, writes and times nothing. An agent that
stages while verifying passes a :class:`PayloadSink` per payload: each chunk reaches the sink only after it went
through the length check (decompressed, for a compressed payload, and never past its signed size), and the
payload counts as verified only once its last chunk was hashed.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sdv.ota.bundle.archive import ArchiveEntry, TarInspector
from sdv.ota.bundle.canonical import format_time
from sdv.ota.bundle.compression import Decoder
from sdv.ota.bundle.config import DEFAULT_LIMITS, OtaLimits
from sdv.ota.bundle.format import BundleHeader, ByteStream, read_header
from sdv.ota.bundle.manifest import MANIFEST_TYPE, FileTreeTarget, Manifest, Payload
from sdv.ota.bundle.rollback import RollbackCheck, SingleCounter
from sdv.ota.bundle.trust import RoleName, TrustRoot, check_role_signatures, check_trust_root_fresh
from sdv.ota.errors import (
    BundleFormatError,
    ExpiredError,
    HardwareIdMismatchError,
    HashMismatchError,
    LengthMismatchError,
    SizeLimitError,
    VerificationError,
)

__all__ = ["BundleVerifier", "PayloadChecker", "PayloadSink", "VerifiedBundle", "VerifiedPayload"]

_logger = logging.getLogger(__name__)


class PayloadSink(Protocol):
    """Where :meth:`BundleVerifier.verify_stream` passes a payload's bytes on (a slot writer)."""

    def write(self, chunk: memoryview, /) -> None:
        """Take the next checked bytes."""


@dataclass(frozen=True)
class VerifiedPayload:
    """A payload that passed every check.

    Attributes:
        payload: its manifest entry.
        offset: where its bytes start in the bundle.
        entries: the archive entries of a file-tree payload (empty for slot images).
    """

    payload: Payload
    offset: int
    entries: tuple[ArchiveEntry, ...]


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle the ECU may install.

    Attributes:
        manifest: the verified manifest.
        signers: ids of the release keys whose signatures counted.
        payloads: the verified payloads, in bundle order.
    """

    manifest: Manifest
    signers: frozenset[str]
    payloads: tuple[VerifiedPayload, ...]


class PayloadChecker:
    """Streams one payload through its length, hash and (for file trees) archive checks.

    A compressed payload's bytes are hashed as they are fed, and decompressed on the fly: the decompressed
    content is capped at its signed size, hashed, inspected (file trees) and handed to ``sink``. An uncompressed
    payload's bytes go to ``sink`` as they are.

    Args:
        payload: the payload's manifest entry.
        limits: archive and decoder limits.
        label: names the payload in messages.
        sink: receives the content to install, after its length check (at most the signed size).
    """

    def __init__(
        self,
        payload: Payload,
        limits: OtaLimits = DEFAULT_LIMITS,
        label: str = "",
        sink: PayloadSink | None = None,
    ) -> None:
        self._payload = payload
        self._label = label or f"payload {payload.name}"
        self._hash = hashlib.sha256()
        self._received = 0
        self._sink = sink
        self._inspector = (
            TarInspector(self._label, limits) if isinstance(payload.target, FileTreeTarget) else None
        )
        self._archive_error: VerificationError | None = None
        compression = payload.compression
        self._content_hash = hashlib.sha256() if compression is not None else None
        self._decoder_error: VerificationError | None = None
        self._decoder = (
            Decoder(
                compression.algorithm,
                compression.size,
                f"{self._label} ({compression.algorithm})",
                self._content,
                max_memory=limits.max_decoder_memory_bytes,
                piece_bytes=min(limits.chunk_bytes, 256 * 1024),
            )
            if compression is not None
            else None
        )

    @property
    def received(self) -> int:
        """Bytes fed so far."""
        return self._received

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Check the next bytes of the payload.

        Raises:
            LengthMismatchError: as soon as more bytes arrive than the manifest declares.

        A compressed payload that decompresses to more than its signed size, or is no valid stream of its
        algorithm, stops being decoded at that point (nothing past the signed size reaches the sink); the error
        is raised by :meth:`finish`, after the SHA-256 of the stored bytes was checked, so a tampered payload is
        reported as such.
        """
        size = len(chunk)
        if self._received + size > self._payload.size:
            raise LengthMismatchError(
                f"{self._label}: more than the {self._payload.size} bytes the manifest declares"
            )
        self._received += size
        self._hash.update(chunk)
        if self._decoder is None:
            self._content(chunk)
        elif self._decoder_error is None:
            try:
                self._decoder.feed(chunk)
            except VerificationError as error:  # decoding stops here; reported after the hash check
                self._decoder_error = error

    def _content(self, chunk: bytes | bytearray | memoryview) -> None:
        """The content to install (the payload itself, or its decompressed output)."""
        if self._content_hash is not None:
            self._content_hash.update(chunk)
        if self._inspector is not None and self._archive_error is None:
            try:
                self._inspector.feed(chunk)
            except VerificationError as error:  # reported after the hash check, to keep the check order
                self._archive_error = error
        if self._sink is not None:
            self._sink.write(memoryview(chunk))

    def finish(self) -> tuple[ArchiveEntry, ...]:
        """Conclude the checks once the payload's last byte was fed.

        Returns:
            The archive entries of a file-tree payload, else an empty tuple.

        Raises:
            LengthMismatchError: fewer bytes than declared (a truncated bundle), or a compressed payload that
                decompresses to fewer bytes than its signed size.
            HashMismatchError: a SHA-256 other than the manifest's (of the stored or the decompressed bytes).
            CompressionFormatError: a compressed payload that is no valid (or a truncated) stream.
            ArchiveFormatError, UnsafeArchiveEntryError, SizeLimitError: a file tree that is unsafe to unpack.
        """
        if self._received != self._payload.size:
            raise LengthMismatchError(
                f"{self._label}: {self._received} bytes, "
                f"the manifest declares {self._payload.size} (truncated)"
            )
        digest = self._hash.hexdigest()
        if digest != self._payload.sha256:
            raise HashMismatchError(
                f"{self._label}: SHA-256 is {digest}, the manifest declares {self._payload.sha256}"
            )
        self._finish_content()
        if self._inspector is None:
            return ()
        if self._archive_error is not None:
            raise self._archive_error
        return tuple(self._inspector.finish())

    def _finish_content(self) -> None:
        compression, decoder = self._payload.compression, self._decoder
        if compression is None or decoder is None or self._content_hash is None:
            return
        if self._decoder_error is None:
            try:
                decoder.finish()
            except VerificationError as error:
                self._decoder_error = error
        if self._decoder_error is not None:
            raise self._decoder_error
        if decoder.produced != compression.size:
            raise LengthMismatchError(
                f"{self._label}: decompresses to {decoder.produced} bytes, the manifest declares "
                f"{compression.size} (truncated)"
            )
        digest = self._content_hash.hexdigest()
        if digest != compression.sha256:
            raise HashMismatchError(
                f"{self._label}: decompressed SHA-256 is {digest}, the manifest declares {compression.sha256}"
            )


class BundleVerifier:
    """Verifies bundles for one ECU against its trusted state.

    Args:
        trust: the ECU's trust root.
        hardware_id: the ECU's hardware id.
        installed_counter: release counter of the installed software (0 if none), strictly exceeded.
        rollback: the rollback check to apply instead (the update agent's per-component counters).
        trusted_now: the trusted time (see :func:`sdv.ota.bundle.trusted_time.trusted_now`).
        limits: size limits and signature policy.
    """

    def __init__(
        self,
        trust: TrustRoot,
        *,
        hardware_id: str,
        installed_counter: int = 0,
        rollback: RollbackCheck | None = None,
        trusted_now: datetime,
        limits: OtaLimits = DEFAULT_LIMITS,
    ) -> None:
        if trusted_now.tzinfo is None:
            raise ValueError("trusted_now must be an aware datetime")
        if installed_counter < 0:
            raise ValueError(f"installed_counter must not be negative, got {installed_counter}")
        self._trust = trust
        self._hardware_id = hardware_id
        self._rollback: RollbackCheck = rollback or SingleCounter(installed_counter)
        self._now = trusted_now
        self._limits = limits

    def verify_header(self, header: BundleHeader, source: str) -> tuple[Manifest, frozenset[str]]:
        """Run checks 2 to 8 on a read header.

        Returns:
            The manifest and the ids of the release keys that signed it.
        """
        check_trust_root_fresh(self._trust, self._now)
        signers = check_role_signatures(
            self._trust,
            RoleName.RELEASE,
            MANIFEST_TYPE,
            header.manifest_bytes,
            header.signatures,
            what=f"{source}: manifest",
            strict=self._limits.strict_signatures,
        )
        manifest = header.parse_manifest(source)
        what = f"{source}: bundle {manifest.name} {manifest.version}"
        if manifest.expires < self._now:
            raise ExpiredError(
                f"{what} expired at {format_time(manifest.expires)} (trusted time {format_time(self._now)})"
            )
        if self._hardware_id not in manifest.hardware_ids:
            raise HardwareIdMismatchError(
                f"{what} is for hardware {', '.join(manifest.hardware_ids)}, this ECU is {self._hardware_id}"
            )
        self._rollback.check(manifest, what)
        self._check_sizes(manifest, what)
        return manifest, signers

    def verify_header_bytes(self, data: bytes, source: str, *, bundle_size: int | None = None) -> Manifest:
        """Run checks 1 to 8 on a bundle's header received on its own, before any payload byte.

        This is what the update agent calls when a transfer begins (header-first transfer): the whole header
        decision is this one call, so every rule of :meth:`verify_header` applies unchanged.

        Args:
            data: the header's bytes: magic, manifest section, signature section, and nothing else.
            source: names the bundle in messages.
            bundle_size: the announced length of the whole bundle; it must be the header's length plus the
                manifest's payload sizes.

        Returns:
            The verified manifest.

        Raises:
            BundleFormatError: a malformed header or bytes after it; SizeLimitError, and every error of
                :meth:`verify_header`; LengthMismatchError: a bundle size other than the manifest's.
        """
        stream = io.BytesIO(data)
        header = read_header(stream, source, self._limits)
        if stream.tell() != len(data):
            raise BundleFormatError(
                f"{source}: {len(data) - stream.tell()} bytes follow the header's {stream.tell()} bytes"
            )
        manifest, _ = self.verify_header(header, source)
        expected = len(data) + manifest.total_size
        if bundle_size is not None and bundle_size != expected:
            raise LengthMismatchError(
                f"{source}: bundle {manifest.name} {manifest.version} is announced with {bundle_size} bytes, "
                f"its header and payloads make {expected}"
            )
        return manifest

    def _check_sizes(self, manifest: Manifest, what: str) -> None:
        limits = self._limits
        if len(manifest.payloads) > limits.max_payloads:
            raise SizeLimitError(
                f"{what}: {len(manifest.payloads)} payloads exceed the limit of {limits.max_payloads}"
            )
        for payload in manifest.payloads:
            largest = max(payload.size, payload.installed_size)  # stored and decompressed alike
            if largest > limits.max_payload_bytes:
                raise SizeLimitError(
                    f"{what}: payload {payload.name} of {largest} bytes exceeds the limit of "
                    f"{limits.max_payload_bytes}"
                )
        total = max(manifest.total_size, manifest.total_installed_size)
        if total > limits.max_total_payload_bytes:
            raise SizeLimitError(
                f"{what}: payloads total {total} bytes, the limit is {limits.max_total_payload_bytes}"
            )

    def verify_stream(
        self,
        stream: ByteStream,
        source: str,
        sink_for: Callable[[Payload], PayloadSink] | None = None,
    ) -> VerifiedBundle:
        """Verify a whole bundle read from ``stream`` (checks 1 to 10), one chunk at a time.

        Args:
            stream: the bundle, positioned at its start.
            source: names the bundle in messages.
            sink_for: called once per payload, after the header verified and before the payload's first byte is
                read; the sink it returns receives the payload's bytes as they are checked.

        Returns:
            The verified bundle.
        """
        header = read_header(stream, source, self._limits)
        manifest, signers = self.verify_header(header, source)
        offset = header.encoded_length
        buffer = bytearray(self._limits.chunk_bytes)
        view = memoryview(buffer)
        verified = []
        for payload in manifest.payloads:
            sink = sink_for(payload) if sink_for is not None else None
            checker = PayloadChecker(payload, self._limits, f"{source}: payload {payload.name}", sink)
            remaining = payload.size
            while remaining:
                count = stream.readinto(view[: min(remaining, len(buffer))])
                if not count:
                    break
                checker.feed(view[:count])
                remaining -= count
            entries = checker.finish()
            verified.append(VerifiedPayload(payload, offset, entries))
            offset += payload.size
        if stream.read(1):
            raise LengthMismatchError(f"{source}: data follows the last payload at offset {offset}")
        _logger.info(
            "%s: bundle %s %s (counter %d) verified, signed by %d release key(s)",
            source,
            manifest.name,
            manifest.version,
            manifest.release_counter,
            len(signers),
        )
        return VerifiedBundle(manifest, signers, tuple(verified))
