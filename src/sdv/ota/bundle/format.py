"""The bundle container: one file holding the manifest, its detached signatures and the payloads.

Layout (specified in ``ota/bundle-format.md``)::

    offset 0        8 bytes   magic "SDVOTA\\x00\\x01" (format version 1)
    8               4 bytes   M, manifest length, unsigned big-endian
    12              M bytes   manifest: canonical JSON of a Manifest
    12+M            4 bytes   S, signature section length, unsigned big-endian
    16+M            S bytes   signature section: canonical JSON {"signatures": [...]}, sorted by key id
    16+M+S          ...       payload bytes, in manifest order, each exactly its manifest size
    end of file               nothing follows the last payload

Invariants:

* the header (everything before the payloads) is read with every length checked against
  :class:`~sdv.ota.bundle.config.OtaLimits` *before* it is read, so a forged length cannot make the reader allocate
  more;
* the signature section is canonical, so its bytes are determined by the set of signatures;
* the payloads have no framing of their own: their boundaries come from the signed manifest, so no byte can be
  moved between payloads without a length or hash check failing.

The functions here read and write streams the caller opened; they perform no file-system access themselves.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sdv.ota.bundle.canonical import canonical_bytes, parse_canonical, signing_input
from sdv.ota.bundle.config import DEFAULT_LIMITS, OtaLimits
from sdv.ota.bundle.keys import PrivateKey, Signature
from sdv.ota.bundle.manifest import MANIFEST_TYPE, Manifest
from sdv.ota.bundle.trust import sorted_signatures
from sdv.ota.errors import BundleFormatError, SizeLimitError

__all__ = [
    "MAGIC",
    "BundleHeader",
    "ByteStream",
    "SignatureSection",
    "read_header",
    "signature_section_bytes",
]

MAGIC = b"SDVOTA\x00\x01"
"""The first eight bytes of every bundle (format version 1)."""

_LENGTH = struct.Struct(">I")


class ByteStream(Protocol):
    """A readable binary stream (an open file, a socket file, ``io.BytesIO``)."""

    def read(self, size: int = -1, /) -> bytes:
        """Read up to ``size`` bytes."""

    def readinto(self, buffer: bytearray | memoryview, /) -> int | None:
        """Read into ``buffer``; return the count (0 at the end)."""


class SignatureSection(BaseModel):
    """The signature section of a bundle.

    Attributes:
        signatures: detached signatures over the manifest, sorted by key id then signature.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    signatures: list[Signature] = Field(max_length=1024)

    @model_validator(mode="after")
    def _sorted(self) -> SignatureSection:
        if self.signatures != sorted_signatures(self.signatures):
            raise ValueError("signatures must be sorted by key id")
        return self


def signature_section_bytes(signatures: list[Signature]) -> bytes:
    """The canonical signature section for a set of signatures."""
    return canonical_bytes(SignatureSection(signatures=sorted_signatures(signatures)))


@dataclass(frozen=True)
class BundleHeader:
    """The part of a bundle before the payloads.

    Attributes:
        manifest_bytes: the manifest exactly as stored (and signed).
        signatures: the detached signatures.
    """

    manifest_bytes: bytes
    signatures: tuple[Signature, ...] = field(default=())

    @classmethod
    def for_manifest(cls, manifest: Manifest) -> BundleHeader:
        """An unsigned header for a manifest."""
        return cls(canonical_bytes(manifest))

    def signed_message(self) -> bytes:
        """The bytes release keys sign: :func:`~sdv.ota.bundle.canonical.signing_input` of the manifest."""
        return signing_input(MANIFEST_TYPE, self.manifest_bytes)

    def parse_manifest(self, source: str) -> Manifest:
        """Parse the manifest (without checking any signature).

        Raises:
            BundleFormatError: if the manifest does not validate or is not canonical.
        """
        try:
            return parse_canonical(Manifest, self.manifest_bytes, f"{source}: manifest")
        except ValueError as error:
            raise BundleFormatError(str(error)) from error

    def with_signature(self, key: PrivateKey) -> BundleHeader:
        """A copy signed by one more key (an earlier signature by the same key is replaced)."""
        signature = key.sign(self.signed_message())
        kept = [existing for existing in self.signatures if existing.keyid != signature.keyid]
        return BundleHeader(self.manifest_bytes, tuple(sorted_signatures([*kept, signature])))

    def encode(self) -> bytes:
        """The header's bytes: magic, manifest section, signature section."""
        section = signature_section_bytes(list(self.signatures))
        return b"".join(
            (
                MAGIC,
                _LENGTH.pack(len(self.manifest_bytes)),
                self.manifest_bytes,
                _LENGTH.pack(len(section)),
                section,
            )
        )

    @property
    def encoded_length(self) -> int:
        """Length of :meth:`encode`'s result: the offset of the first payload byte."""
        return len(self.encode())


def _read_exact(stream: ByteStream, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise BundleFormatError(f"{what}: the bundle ends after {len(data)} of {size} bytes (truncated)")
    return data


def read_header(stream: ByteStream, source: str, limits: OtaLimits = DEFAULT_LIMITS) -> BundleHeader:
    """Read and check the container header, leaving ``stream`` at the first payload byte.

    Args:
        stream: the bundle, positioned at its start.
        source: names the bundle in messages.
        limits: section size limits.

    Raises:
        BundleFormatError: wrong magic, truncated header, malformed or non-canonical signature section.
        SizeLimitError: a section longer than its limit, or too many signatures.
    """
    magic = stream.read(len(MAGIC))
    if magic != MAGIC:
        raise BundleFormatError(f"{source}: not an sdv OTA bundle (magic {magic[:8]!r}, expected {MAGIC!r})")
    (manifest_length,) = _LENGTH.unpack(_read_exact(stream, _LENGTH.size, f"{source}: manifest length"))
    if manifest_length > limits.max_manifest_bytes:
        raise SizeLimitError(
            f"{source}: manifest of {manifest_length} bytes exceeds the limit of {limits.max_manifest_bytes}"
        )
    manifest_bytes = _read_exact(stream, manifest_length, f"{source}: manifest")
    (section_length,) = _LENGTH.unpack(
        _read_exact(stream, _LENGTH.size, f"{source}: signature section length")
    )
    if section_length > limits.max_signatures_bytes:
        raise SizeLimitError(
            f"{source}: signature section of {section_length} bytes exceeds the limit of "
            f"{limits.max_signatures_bytes}"
        )
    section_bytes = _read_exact(stream, section_length, f"{source}: signature section")
    try:
        section = parse_canonical(SignatureSection, section_bytes, f"{source}: signature section")
    except ValueError as error:
        raise BundleFormatError(str(error)) from error
    if len(section.signatures) > limits.max_signatures:
        raise SizeLimitError(
            f"{source}: {len(section.signatures)} signatures exceed the limit of {limits.max_signatures}"
        )
    return BundleHeader(manifest_bytes, tuple(section.signatures))
