"""The signed bundle index a plain HTTP(S) server holds: which bundle each hardware id should run.

Format (canonical JSON, :mod:`sdv.ota.bundle.canonical`)::

    {"signatures": [{"keyid": ..., "sig": ...}, ...],
     "signed": {"type": "sdv-ota/index/v1", "version": 7, "expires": "2026-12-31T00:00:00Z",
                "bundles": [{"hardware_id": "ihu-gen3", "name": "ihu", "version": "1.5.0",
                             "release_counter": 5, "url": "ihu-1.5.0.sdvota", "size": 123, "sha256": "..."}]}}

Invariants:

* the index is signed by the same ``release`` role and threshold as bundles, over
  ``signing_input("sdv-ota/index/v1", canonical(signed))``; a non-canonical file is refused;
* an expired index is refused (at the trusted time), and so is one whose ``version`` is below the highest the
  agent has accepted (a server replaying an older index to hold an ECU back);
* the index only says *which* bundle: the bundle itself is verified as every other (signatures, hardware id,
  release counters), so a compromised index can at most offer an older bundle, which the counters refuse.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from sdv.ota.bundle.canonical import UtcTime, canonical_bytes, format_time, parse_canonical, signing_input
from sdv.ota.bundle.config import OtaLimits
from sdv.ota.bundle.keys import PrivateKey, Signature
from sdv.ota.bundle.manifest import HardwareId, Name
from sdv.ota.bundle.trust import RoleName, TrustRoot, check_role_signatures, sorted_signatures
from sdv.ota.errors import ExpiredError, IndexFormatError, RollbackError, SizeLimitError

__all__ = [
    "INDEX_TYPE",
    "BundleIndex",
    "IndexEntry",
    "SignedIndex",
    "parse_index",
    "sign_index",
    "verify_index",
]

INDEX_TYPE: Final = "sdv-ota/index/v1"
"""The ``type`` of an index, also the label of its signatures."""

_STRICT = ConfigDict(extra="forbid", frozen=True)
_SHA256 = r"^[0-9a-f]{64}$"


class IndexEntry(BaseModel):
    """One bundle offered to one hardware id.

    Attributes:
        hardware_id: the ECUs it is for.
        name: the bundle's name.
        version: the bundle's version.
        release_counter: the bundle's release counter.
        url: where it is, absolute or relative to the index.
        size: its length in bytes.
        sha256: SHA-256 of the file.
    """

    model_config = _STRICT

    hardware_id: HardwareId
    name: Name
    version: str = Field(min_length=1, max_length=128)
    release_counter: int = Field(ge=0, le=2**63 - 1)
    url: str = Field(min_length=1, max_length=2048, pattern=r"^[^\s]+$")
    size: int = Field(ge=1, le=2**63 - 1)
    sha256: str = Field(pattern=_SHA256)


class BundleIndex(BaseModel):
    """The signed part of an index.

    Attributes:
        type: ``sdv-ota/index/v1``.
        version: grows with every new index; the agent refuses a lower one than it accepted.
        expires: the index is refused after this time.
        bundles: at most one entry per hardware id.
    """

    model_config = _STRICT

    type: Literal["sdv-ota/index/v1"] = INDEX_TYPE
    version: int = Field(ge=1, le=2**63 - 1)
    expires: UtcTime
    bundles: list[IndexEntry] = Field(max_length=1024)

    def entry_for(self, hardware_id: str) -> IndexEntry | None:
        """The bundle for ``hardware_id``, if the index has one."""
        return next((entry for entry in self.bundles if entry.hardware_id == hardware_id), None)


class SignedIndex(BaseModel):
    """An index and its detached signatures."""

    model_config = _STRICT

    signed: BundleIndex
    signatures: list[Signature] = Field(default_factory=list, max_length=1024)


def parse_index(data: bytes, source: str, max_bytes: int) -> SignedIndex:
    """Parse an index file's bytes.

    Raises:
        SizeLimitError: more than ``max_bytes``.
        IndexFormatError: not a canonical signed index, or two entries for one hardware id.
    """
    if len(data) > max_bytes:
        raise SizeLimitError(f"{source}: index of {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        index = parse_canonical(SignedIndex, data, f"{source}: index")
    except ValueError as error:
        raise IndexFormatError(str(error)) from error
    ids = [entry.hardware_id for entry in index.signed.bundles]
    if len(set(ids)) != len(ids):
        raise IndexFormatError(f"{source}: index: two bundles for one hardware id")
    return index


def sign_index(index: SignedIndex, key: PrivateKey) -> SignedIndex:
    """Add (or replace) one key's signature."""
    signature = key.sign(signing_input(INDEX_TYPE, canonical_bytes(index.signed)))
    kept = [existing for existing in index.signatures if existing.keyid != signature.keyid]
    return SignedIndex(signed=index.signed, signatures=sorted_signatures([*kept, signature]))


def verify_index(
    index: SignedIndex,
    trust: TrustRoot,
    *,
    source: str,
    trusted_now: datetime,
    floor: int,
    limits: OtaLimits,
) -> BundleIndex:
    """Check an index's signatures, expiry and version.

    Args:
        index: the parsed index.
        trust: the ECU's trust root (its ``release`` role signs indexes).
        source: names the index in messages.
        trusted_now: the trusted time.
        floor: the highest index version accepted before.
        limits: the signature policy.

    Raises:
        ThresholdNotMetError, BadSignatureError: the signatures.
        ExpiredError: expired.
        RollbackError: a version below ``floor``.
    """
    check_role_signatures(
        trust,
        RoleName.RELEASE,
        INDEX_TYPE,
        canonical_bytes(index.signed),
        index.signatures,
        what=f"{source}: index",
        strict=limits.strict_signatures,
    )
    signed = index.signed
    if signed.expires < trusted_now:
        raise ExpiredError(
            f"{source}: index version {signed.version} expired at {format_time(signed.expires)} "
            f"(trusted time {format_time(trusted_now)})"
        )
    if signed.version < floor:
        raise RollbackError(
            f"{source}: index version {signed.version} is older than version {floor} seen before"
        )
    return signed
