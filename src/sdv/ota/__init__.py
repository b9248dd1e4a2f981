"""Over-the-air updates: signed update bundles, trust roots and their verification, and the ECU's update agent.

The pure modules hold the rules and perform no I/O: :mod:`~sdv.ota.canonical` (the signed byte encoding),
:mod:`~sdv.ota.keys`, :mod:`~sdv.ota.manifest`, :mod:`~sdv.ota.bundle` (the container format),
:mod:`~sdv.ota.trust` (roles, thresholds, rotation), :mod:`~sdv.ota.archive` (file-tree safety),
:mod:`~sdv.ota.trusted_time`, :mod:`~sdv.ota.verifier` and :mod:`~sdv.ota.report` (ECU install reports).
:mod:`~sdv.ota.store` does the file I/O around them. The format is specified in ``ota/bundle-format.md``.

The update agent: :mod:`~sdv.ota.agent_state` (its states and transitions, pure), :mod:`~sdv.ota.boot` (boot
selection), :mod:`~sdv.ota.slots` (A/B slot backends), :mod:`~sdv.ota.agent_config` and the orchestrator
:mod:`~sdv.ota.agent` (``UpdateAgent``). They are imported from their modules, not re-exported here.
"""

from __future__ import annotations

from sdv.ota.bundle import MAGIC, BundleHeader, read_header
from sdv.ota.config import DEFAULT_LIMITS, OtaLimits
from sdv.ota.errors import (
    ArchiveFormatError,
    BadSignatureError,
    BundleFormatError,
    ExpiredError,
    HardwareIdMismatchError,
    HashMismatchError,
    KeyFormatError,
    LengthMismatchError,
    NonceMismatchError,
    RollbackError,
    RotationError,
    SizeLimitError,
    ThresholdNotMetError,
    TrustRootFormatError,
    UnknownKeyError,
    UnsafeArchiveEntryError,
)
from sdv.ota.keys import KeyType, PrivateKey, PublicKey, PublicKeyRecord, Signature, generate_private_key
from sdv.ota.manifest import FileTreeTarget, Manifest, Payload, SlotImageTarget
from sdv.ota.trust import Role, RoleName, SignedTrustRoot, TrustRoot, verify_rotation
from sdv.ota.trusted_time import TimeState, trusted_now
from sdv.ota.verifier import BundleVerifier, PayloadChecker, VerifiedBundle, VerifiedPayload

__all__ = [
    "DEFAULT_LIMITS",
    "MAGIC",
    "ArchiveFormatError",
    "BadSignatureError",
    "BundleFormatError",
    "BundleHeader",
    "BundleVerifier",
    "ExpiredError",
    "FileTreeTarget",
    "HardwareIdMismatchError",
    "HashMismatchError",
    "KeyFormatError",
    "KeyType",
    "LengthMismatchError",
    "Manifest",
    "NonceMismatchError",
    "OtaLimits",
    "Payload",
    "PayloadChecker",
    "PrivateKey",
    "PublicKey",
    "PublicKeyRecord",
    "Role",
    "RoleName",
    "RollbackError",
    "RotationError",
    "Signature",
    "SignedTrustRoot",
    "SizeLimitError",
    "SlotImageTarget",
    "ThresholdNotMetError",
    "TimeState",
    "TrustRoot",
    "TrustRootFormatError",
    "UnknownKeyError",
    "UnsafeArchiveEntryError",
    "VerifiedBundle",
    "VerifiedPayload",
    "generate_private_key",
    "read_header",
    "trusted_now",
    "verify_rotation",
]
