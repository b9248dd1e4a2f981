"""File I/O around the pure OTA code: key files, trust files, time state, building, signing, verifying
bundles.

Everything that touches the file system or the clock lives here; the checks themselves live in the pure
modules.

Invariants:

* every file this module writes is written atomically: a temporary file in the same directory is written,
  flushed and ``fsync``-ed, renamed over the target with ``os.replace``, and the directory is ``fsync``-ed, so
  a power loss leaves either the old or the new content, never a mix (this matters for trust roots and the
  trusted time floor, which must never go backwards);
* files are read with a size limit, so a huge file cannot exhaust memory;
* payload files are hashed and copied in chunks, never read whole.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import ValidationError

from sdv.files import atomic_writer, fsync_directory, write_atomically
from sdv.located import validation_problems
from sdv.ota.bundle.canonical import canonical_bytes, parse_canonical
from sdv.ota.bundle.compression import Algorithm, new_encoder
from sdv.ota.bundle.config import DEFAULT_LIMITS, OtaLimits
from sdv.ota.bundle.format import BundleHeader, ByteStream, read_header
from sdv.ota.bundle.keys import PrivateKey, PublicKey, load_private_key_pem, load_public_key_pem
from sdv.ota.bundle.manifest import (
    MANIFEST_TYPE,
    PATTERN_WORDS,
    Manifest,
    Payload,
    PayloadCompression,
    PayloadTarget,
)
from sdv.ota.bundle.trust import SignedTrustRoot, TrustRoot, parse_signed_trust_root
from sdv.ota.bundle.trusted_time import TimeState, trusted_now, whole_seconds
from sdv.ota.bundle.vehicle_terms import VehicleTerms
from sdv.ota.bundle.verifier import BundleVerifier, PayloadChecker, VerifiedBundle
from sdv.ota.errors import BundleFormatError, OtaError, SizeLimitError, TrustRootFormatError

__all__ = [
    "PayloadSource",
    "atomic_writer",
    "build_bundle",
    "fsync_directory",
    "hash_file",
    "load_private_key",
    "load_public_key",
    "load_time_state",
    "load_trust",
    "open_for_reading",
    "read_bundle_header",
    "read_limited",
    "save_time_state",
    "save_trust",
    "sign_bundle",
    "verify_bundle_file",
    "write_atomically",
    "write_private_key",
]

_logger = logging.getLogger(__name__)

_KEY_FILE_LIMIT = 64 * 1024


def read_limited(path: Path, limit: int, what: str) -> bytes:
    """Read a whole small file, refusing one longer than ``limit`` bytes.

    Raises:
        SizeLimitError: if the file is longer.
        OtaError: if it cannot be read.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        raise OtaError(f"{path}: cannot read {what}: {error.strerror}") from error
    if len(data) > limit:
        raise SizeLimitError(f"{path}: {what} is longer than {limit} bytes")
    return data


def load_private_key(path: Path) -> PrivateKey:
    """Load a PEM private key file."""
    return load_private_key_pem(read_limited(path, _KEY_FILE_LIMIT, "private key"), str(path))


def load_public_key(path: Path) -> PublicKey:
    """Load a PEM public key file (a private key file is accepted too: its public half is used)."""
    data = read_limited(path, _KEY_FILE_LIMIT, "public key")
    if b"PRIVATE KEY" in data:
        return load_private_key_pem(data, str(path)).public_key
    return load_public_key_pem(data, str(path))


def write_private_key(path: Path, key: PrivateKey) -> None:
    """Write a private key file readable by its owner only."""
    write_atomically(path, key.to_pem(), mode=0o600)


def load_trust(path: Path, limits: OtaLimits = DEFAULT_LIMITS) -> SignedTrustRoot:
    """Load a trust file."""
    return parse_signed_trust_root(
        read_limited(path, limits.max_trust_root_bytes, "trust root"), str(path), limits
    )


def save_trust(path: Path, signed: SignedTrustRoot) -> None:
    """Write a trust file atomically."""
    write_atomically(path, canonical_bytes(signed))


def load_time_state(path: Path) -> TimeState | None:
    """Load the trusted time floor, or ``None`` if the file does not exist yet."""
    if not path.exists():
        return None
    data = read_limited(path, 4096, "time state")
    try:
        return parse_canonical(TimeState, data, f"{path}: time state")
    except ValueError as error:
        raise TrustRootFormatError(str(error)) from error


def save_time_state(path: Path, state: TimeState) -> None:
    """Persist the trusted time floor atomically, refusing to move it backwards."""
    current = load_time_state(path)
    if current is not None and state.latest < current.latest:
        raise OtaError(
            f"{path}: refusing to move the trusted time back from {current.latest} to {state.latest}"
        )
    write_atomically(path, canonical_bytes(state))


def hash_file(path: Path, chunk_bytes: int = DEFAULT_LIMITS.chunk_bytes) -> tuple[int, str]:
    """Size and SHA-256 (hex) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(chunk_bytes)
    view = memoryview(buffer)
    with path.open("rb") as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
            size += count
    return size, digest.hexdigest()


@dataclass(frozen=True)
class PayloadSource:
    """A payload file to put into a bundle.

    Attributes:
        path: the file.
        name: the payload's name in the manifest.
        target: where the ECU installs it.
        compression: ``zstd`` or ``xz`` to store it compressed, ``None`` to store it as is.
    """

    path: Path
    name: str
    target: PayloadTarget
    compression: Algorithm | None = None


def _compress_file(source: Path, output: Path, algorithm: Algorithm, chunk_bytes: int) -> PayloadCompression:
    """Compress ``source`` into ``output`` in chunks; returns the decompressed size and SHA-256."""
    encoder = new_encoder(algorithm)
    digest = hashlib.sha256()
    size = 0
    with source.open("rb") as reader, output.open("wb") as writer:
        while data := reader.read(chunk_bytes):
            digest.update(data)
            size += len(data)
            writer.write(encoder.compress(data))
        writer.write(encoder.flush())
    return PayloadCompression(algorithm=algorithm, size=size, sha256=digest.hexdigest())


def _stored_payloads(payloads: Sequence[PayloadSource], scratch: Path) -> tuple[list[Path], list[Payload]]:
    """The files to store (compressed copies in ``scratch`` where asked) and their manifest entries."""
    files: list[Path] = []
    entries: list[Payload] = []
    for index, source in enumerate(payloads):
        compression = None
        stored = source.path
        if source.compression is not None:
            stored = scratch / f"{index}.{source.compression}"
            compression = _compress_file(source.path, stored, source.compression, DEFAULT_LIMITS.chunk_bytes)
        size, digest = hash_file(stored)
        files.append(stored)
        entries.append(
            Payload(name=source.name, size=size, sha256=digest, target=source.target, compression=compression)
        )
    return files, entries


def _copy_checked(
    source: ByteStream, destination: BinaryIO, payload: Payload, label: str, chunk: int
) -> None:
    checker = PayloadChecker(payload, label=label)
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    remaining = payload.size
    while remaining:
        count = source.readinto(view[: min(remaining, chunk)])
        if not count:
            break
        checker.feed(view[:count])
        destination.write(view[:count])
        remaining -= count
    checker.finish()


def build_bundle(
    output: Path,
    *,
    name: str,
    version: str,
    release_counter: int,
    hardware_ids: Sequence[str],
    payloads: Sequence[PayloadSource],
    expires_in: timedelta,
    now: datetime | None = None,
    reinstall: bool = False,
    counter_floors: Mapping[str, int] | None = None,
    vehicle: VehicleTerms | None = None,
) -> Manifest:
    """Build an unsigned bundle file.

    ``reinstall``, ``counter_floors`` and ``vehicle`` are the manifest's fields of the same names.

    Payload files are hashed (and compressed, where their source asks, into a scratch file beside ``output``),
    then copied into the bundle while being hashed again and, if compressed, decompressed and checked against the
    source's size and SHA-256, so a file that changes in between is detected. File-tree payloads are checked for
    archive safety before they are accepted.

    Returns:
        The bundle's manifest.
    """
    created = whole_seconds(now or datetime.now(UTC))
    with tempfile.TemporaryDirectory(prefix=f".{output.name}.", dir=output.parent) as scratch:
        files, entries = _stored_payloads(payloads, Path(scratch))
        manifest = _new_manifest(
            output,
            type=MANIFEST_TYPE,
            name=name,
            version=version,
            release_counter=release_counter,
            hardware_ids=list(hardware_ids),
            created=created,
            expires=created + expires_in,
            payloads=entries,
            reinstall=reinstall,
            counter_floors=dict(counter_floors or {}),
            vehicle=vehicle,
        )
        header = BundleHeader.for_manifest(manifest)
        with atomic_writer(output) as handle:
            handle.write(header.encode())
            for source, stored, payload in zip(payloads, files, manifest.payloads, strict=True):
                with stored.open("rb") as payload_file:
                    _copy_checked(payload_file, handle, payload, f"{source.path}", DEFAULT_LIMITS.chunk_bytes)
    _logger.info("built %s: %s %s with %d payload(s)", output, name, version, len(payloads))
    return manifest


def _new_manifest(output: Path, **fields: Any) -> Manifest:
    try:
        return Manifest(**fields)
    except ValidationError as error:
        problems = "; ".join(
            f"{problem.location}: {problem.message}"
            for problem in validation_problems(error, str(output), patterns=PATTERN_WORDS)
        )
        raise BundleFormatError(f"{output}: invalid manifest: {problems}") from error


def open_for_reading(path: Path, what: str = "bundle") -> io.BufferedReader:
    """Open a file the caller named (a bundle, by default) for reading.

    Raises:
        OtaError: it cannot be opened (missing, a folder, not readable), naming the file and what it is.
    """
    try:
        return path.open("rb")
    except OSError as error:
        raise OtaError(f"{path}: cannot read {what}: {error.strerror or error}") from error


def read_bundle_header(path: Path, limits: OtaLimits = DEFAULT_LIMITS) -> BundleHeader:
    """Read a bundle file's header (no signature check).

    Raises:
        OtaError: the file cannot be read.
        BundleFormatError: it is not a bundle.
    """
    with open_for_reading(path) as handle:
        return read_header(handle, str(path), limits)


def sign_bundle(path: Path, key: PrivateKey, limits: OtaLimits = DEFAULT_LIMITS) -> BundleHeader:
    """Add one signature to a bundle file, in place (atomically).

    The payloads are checked against the manifest while they are copied, so a key never signs a bundle whose
    payloads do not match what it signs.

    Returns:
        The new header.
    """
    with open_for_reading(path) as handle:
        header = read_header(handle, str(path), limits)
        manifest = header.parse_manifest(str(path))
        signed = header.with_signature(key)
        with atomic_writer(path, mode=os.stat(path).st_mode & 0o777) as output:
            output.write(signed.encode())
            for payload in manifest.payloads:
                _copy_checked(handle, output, payload, f"{path}: payload {payload.name}", limits.chunk_bytes)
            if handle.read(1):
                raise BundleFormatError(f"{path}: data follows the last payload")
    _logger.info("signed %s with key %s", path, key.keyid[:16])
    return signed


def verify_bundle_file(
    path: Path,
    trust: TrustRoot,
    *,
    hardware_id: str,
    installed_counter: int,
    time_state_path: Path | None = None,
    clock: datetime | None = None,
    limits: OtaLimits = DEFAULT_LIMITS,
) -> VerifiedBundle:
    """Verify a bundle file for this ECU and, on success, raise the trusted time floor to its creation time.

    Args:
        path: the bundle.
        trust: the ECU's trust root.
        hardware_id: the ECU's hardware id.
        installed_counter: the installed release counter.
        time_state_path: the persisted trusted time floor (optional; without it only the clock is used).
        clock: the clock reading to use instead of the system clock.
        limits: size limits and policies.
    """
    state = load_time_state(time_state_path) if time_state_path is not None else None
    now = trusted_now(clock or datetime.now(UTC), state)
    verifier = BundleVerifier(
        trust, hardware_id=hardware_id, installed_counter=installed_counter, trusted_now=now, limits=limits
    )
    try:
        with path.open("rb", buffering=0) as handle:
            verified = verifier.verify_stream(handle, str(path))
    except OSError as error:
        raise OtaError(f"{path}: cannot read bundle: {error.strerror}") from error
    if time_state_path is not None:
        new_state = (state or TimeState(latest=verified.manifest.created)).advanced(verified.manifest.created)
        if new_state != state:
            save_time_state(time_state_path, new_state)
    return verified
