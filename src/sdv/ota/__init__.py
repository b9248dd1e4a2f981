"""Over-the-air updates, in two parts for their two users.

* :mod:`sdv.ota.bundle`: the update bundle, keys, trust roots, the verifier and the ECU's signed report — what the
  OTA server builds and signs, and what the ECU checks before it stages a byte.
* :mod:`sdv.ota.agent`: the ECU's update agent — transfer, slot groups, boot selection, trial, commit, rollback,
  the event log.

:mod:`sdv.ota.errors` is shared by both. The bundle side's main names are re-exported here; the agent is imported
from its modules.
"""

from __future__ import annotations

from sdv.ota.bundle.config import DEFAULT_LIMITS, OtaLimits
from sdv.ota.bundle.format import MAGIC, BundleHeader, read_header
from sdv.ota.bundle.keys import (
    KeyType,
    PrivateKey,
    PublicKey,
    PublicKeyRecord,
    Signature,
    generate_private_key,
)
from sdv.ota.bundle.manifest import FileTreeTarget, Manifest, Payload, SlotImageTarget
from sdv.ota.bundle.trust import Role, RoleName, SignedTrustRoot, TrustRoot, verify_rotation
from sdv.ota.bundle.trusted_time import TimeState, trusted_now
from sdv.ota.bundle.verifier import BundleVerifier, PayloadChecker, VerifiedBundle, VerifiedPayload
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
