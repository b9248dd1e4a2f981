"""Trust roots: which keys may sign what, how many signatures are needed, and how the root itself rotates.

A trust root lists public keys and two roles (as TUF's root metadata, TUF specification "root.json", and
Uptane's Root metadata of the Director and Image repositories):

* ``root`` signs new versions of the trust root;
* ``release`` signs bundle manifests.

Each role names its key ids and a threshold: a document is accepted only when at least ``threshold``
*distinct* keys of the role produced a valid signature (a key signing twice counts once).

Invariants:

* every key id of a role is listed in ``keys`` and equals the SHA-256 of the key's record;
* a role's threshold lies between 1 and its number of keys;
* rotation (TUF specification, client workflow "Update the root role"): version N+1 is accepted only if it is
  signed by a threshold of the *old* root's ``root`` keys and by a threshold of its *own* ``root`` keys, and
  if its version is exactly one more. Keys the new root leaves out stop counting at once, for bundles and for
  later rotations.

The ECU's current root is trusted because it was provisioned (at the factory or by an earlier verified
rotation); it is loaded without checking its own signatures, like an installed certificate authority bundle.
Everything else is checked against it. This module performs no I/O.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sdv.ota.bundle.canonical import UtcTime, canonical_bytes, format_time, parse_canonical, signing_input
from sdv.ota.bundle.config import DEFAULT_LIMITS, OtaLimits
from sdv.ota.bundle.keys import KeyId, PublicKey, PublicKeyRecord, Signature
from sdv.ota.errors import (
    BadSignatureError,
    ExpiredError,
    RollbackError,
    RotationError,
    SizeLimitError,
    ThresholdNotMetError,
    TrustRootFormatError,
    UnknownKeyError,
)

__all__ = [
    "ROOT_TYPE",
    "Role",
    "RoleName",
    "SignatureTally",
    "SignedTrustRoot",
    "TrustRoot",
    "check_role_signatures",
    "check_threshold",
    "check_trust_root_fresh",
    "parse_signed_trust_root",
    "sign_trust_root",
    "sorted_signatures",
    "tally_signatures",
    "verify_rotation",
]

_logger = logging.getLogger(__name__)

ROOT_TYPE: Final = "sdv-ota/root/v1"
"""The ``type`` of a trust root, also the label of its signatures."""

_STRICT = ConfigDict(extra="forbid", frozen=True)


class RoleName(StrEnum):
    """The roles of a trust root."""

    ROOT = "root"
    RELEASE = "release"


class Role(BaseModel):
    """The keys of one role and how many of them must sign.

    Attributes:
        keyids: the ids of the role's keys, sorted, without duplicates.
        threshold: how many distinct keys must sign.
    """

    model_config = _STRICT

    keyids: list[KeyId] = Field(min_length=1, max_length=256)
    threshold: int = Field(ge=1, le=256)

    @model_validator(mode="after")
    def _consistent(self) -> Role:
        if self.keyids != sorted(set(self.keyids)):
            raise ValueError("keyids must be sorted and unique")
        if self.threshold > len(self.keyids):
            raise ValueError(f"threshold {self.threshold} exceeds the {len(self.keyids)} keys of the role")
        return self


class TrustRoot(BaseModel):
    """The keys and roles an ECU trusts.

    Attributes:
        type: the document type, ``"sdv-ota/root/v1"``.
        version: starts at 1 and grows by exactly one with each rotation.
        expires: after this time the root, and so every bundle, is refused; ``None`` for no expiry.
        keys: public keys by key id.
        roles: the ``root`` and ``release`` roles.
    """

    model_config = _STRICT

    type: Literal["sdv-ota/root/v1"]
    version: int = Field(ge=1, le=2**63 - 1)
    expires: UtcTime | None
    keys: dict[KeyId, PublicKeyRecord] = Field(min_length=1, max_length=1024)
    roles: dict[RoleName, Role]

    @model_validator(mode="after")
    def _consistent(self) -> TrustRoot:
        for keyid, record in self.keys.items():
            if record.keyid != keyid:
                raise ValueError(f"key {keyid[:16]}... is listed under an id that is not its SHA-256")
            PublicKey.from_record(record)
        missing_roles = set(RoleName) - set(self.roles)
        if missing_roles:
            raise ValueError(f"missing roles: {', '.join(sorted(missing_roles))}")
        for name, role in self.roles.items():
            unknown = [keyid for keyid in role.keyids if keyid not in self.keys]
            if unknown:
                raise ValueError(f"role {name.value} names unlisted key {unknown[0][:16]}...")
        return self

    def role_keys(self, role: RoleName) -> dict[str, PublicKey]:
        """The public keys of one role, by key id."""
        return {keyid: PublicKey.from_record(self.keys[keyid]) for keyid in self.roles[role].keyids}

    def signed_bytes(self) -> bytes:
        """The canonical bytes root keys sign."""
        return canonical_bytes(self)


class SignedTrustRoot(BaseModel):
    """A trust root with its detached signatures, as stored in a trust file.

    Attributes:
        signed: the trust root.
        signatures: signatures over :func:`signing_input` of the root, sorted by key id.
    """

    model_config = _STRICT

    signed: TrustRoot
    signatures: list[Signature] = Field(max_length=1024)

    @model_validator(mode="after")
    def _sorted(self) -> SignedTrustRoot:
        if self.signatures != sorted_signatures(self.signatures):
            raise ValueError("signatures must be sorted by key id")
        return self


def sorted_signatures(signatures: Sequence[Signature]) -> list[Signature]:
    """Signatures in their canonical order (by key id, then signature)."""
    return sorted(signatures, key=lambda signature: (signature.keyid, signature.sig))


@dataclass(frozen=True)
class SignatureTally:
    """The outcome of checking signatures against a set of keys.

    Attributes:
        valid: ids of the listed keys with at least one valid signature.
        bad: ids of listed keys whose signature does not verify.
        unknown: ids of keys that are not listed.
        repeated: ids that appear in more than one signature.
    """

    valid: frozenset[str]
    bad: tuple[str, ...]
    unknown: tuple[str, ...]
    repeated: tuple[str, ...]


def tally_signatures(
    kind: str, document: bytes, signatures: Sequence[Signature], keys: Mapping[str, PublicKey]
) -> SignatureTally:
    """Check each signature over ``signing_input(kind, document)`` with the key it names.

    Args:
        kind: the document kind (its ``type`` field).
        document: the canonical bytes that were signed.
        signatures: the signatures found.
        keys: the keys that count, by key id.
    """
    message = signing_input(kind, document)
    valid: set[str] = set()
    bad: list[str] = []
    unknown: list[str] = []
    for signature in signatures:
        key = keys.get(signature.keyid)
        if key is None:
            unknown.append(signature.keyid)
        elif key.verify(bytes.fromhex(signature.sig), message):
            valid.add(signature.keyid)
        else:
            bad.append(signature.keyid)
    counts = Counter(signature.keyid for signature in signatures)
    repeated = tuple(sorted(keyid for keyid, count in counts.items() if count > 1))
    return SignatureTally(frozenset(valid), tuple(bad), tuple(unknown), repeated)


def _short(keyid: str) -> str:
    return keyid[:16]


def check_threshold(
    tally: SignatureTally, *, threshold: int, what: str, role: str, strict: bool
) -> frozenset[str]:
    """Apply a role's signature policy to a tally, in a fixed order.

    The order is: a signature by a listed key that does not verify (:class:`BadSignatureError`, strict only);
    a signature by an unlisted key (:class:`UnknownKeyError`, strict only); fewer distinct valid keys than the
    threshold (:class:`ThresholdNotMetError`).

    Args:
        tally: the checked signatures.
        threshold: distinct valid keys required.
        what: the document, for error messages.
        role: the role name, for error messages.
        strict: refuse bad and unknown signatures instead of ignoring them.

    Returns:
        The ids of the keys that signed validly.
    """
    if strict and tally.bad:
        raise BadSignatureError(
            f"{what}: signature by {role} key {_short(tally.bad[0])} does not verify "
            "(the signed data was altered after signing or the signature is corrupt)"
        )
    if strict and tally.unknown:
        raise UnknownKeyError(
            f"{what}: signed by key {_short(tally.unknown[0])}, "
            f"which the trust root does not list for role {role}"
        )
    if len(tally.valid) < threshold:
        details = []
        if tally.repeated:
            details.append(f"key {_short(tally.repeated[0])} signed more than once and counts once")
        if tally.bad:
            details.append(f"{len(tally.bad)} signature(s) do not verify")
        if tally.unknown:
            details.append(f"{len(tally.unknown)} signature(s) by keys not listed for role {role}")
        suffix = f" ({'; '.join(details)})" if details else ""
        raise ThresholdNotMetError(
            f"{what}: {len(tally.valid)} distinct valid {role} signature(s), threshold is {threshold}{suffix}"
        )
    return tally.valid


def check_role_signatures(
    trust: TrustRoot,
    role: RoleName,
    kind: str,
    document: bytes,
    signatures: Sequence[Signature],
    *,
    what: str,
    strict: bool,
) -> frozenset[str]:
    """Apply the signature policy of documents a role of ``trust`` signs (bundle manifests: ``release``).

    Every signature is checked with the key it names if the trust root lists that key in any role. With the
    strict policy a listed key's signature that does not verify refuses the document (:class:`BadSignatureError`):
    no byte the ECU can check may change. Signatures by keys the trust root does not list are ignored, as TUF
    does: the ECU cannot check them, and they never count. Only the role's own keys count towards its threshold
    (:class:`ThresholdNotMetError`). So a bundle signed by the release keys of two trust root versions during a
    rotation verifies on ECUs holding either version, while no unknown key can ever help to authorize it.

    Args:
        trust: the trusted root.
        role: the role whose threshold applies.
        kind: the document kind (its ``type``).
        document: the canonical bytes that were signed.
        signatures: the signatures found.
        what: the document, for error messages.
        strict: refuse a listed key's bad signature instead of ignoring it.

    Returns:
        The ids of the role's keys that signed validly.
    """
    listed = {keyid: PublicKey.from_record(record) for keyid, record in trust.keys.items()}
    tally = tally_signatures(kind, document, signatures, listed)
    if strict and tally.bad:
        raise BadSignatureError(
            f"{what}: signature by key {_short(tally.bad[0])}, which the trust root lists, does not verify "
            "(the signed data was altered after signing or the signature is corrupt)"
        )
    members = frozenset(trust.roles[role].keyids)
    others = tuple(sorted(keyid for keyid in tally.valid if keyid not in members))
    counted = SignatureTally(
        frozenset(tally.valid & members), tally.bad, (*tally.unknown, *others), tally.repeated
    )
    if tally.unknown:
        _logger.info(
            "%s: ignoring %d signature(s) by keys the trust root does not list (%s)",
            what,
            len(tally.unknown),
            ", ".join(_short(keyid) for keyid in tally.unknown),
        )
    return check_threshold(
        counted, threshold=trust.roles[role].threshold, what=what, role=role.value, strict=False
    )


def check_trust_root_fresh(root: TrustRoot, trusted_now: datetime) -> None:
    """Refuse an expired trust root.

    Raises:
        ExpiredError: if the root's expiry lies before the trusted time.
    """
    if root.expires is not None and root.expires < trusted_now:
        raise ExpiredError(
            f"trust root version {root.version} expired at {format_time(root.expires)} "
            f"(trusted time {format_time(trusted_now)})"
        )


def parse_signed_trust_root(data: bytes, source: str, limits: OtaLimits = DEFAULT_LIMITS) -> SignedTrustRoot:
    """Parse a trust file's bytes (canonical JSON of a :class:`SignedTrustRoot`).

    Raises:
        SizeLimitError: if the data exceeds ``limits.max_trust_root_bytes``.
        TrustRootFormatError: if it does not validate or is not canonical.
    """
    if len(data) > limits.max_trust_root_bytes:
        raise SizeLimitError(
            f"{source}: trust root is {len(data)} bytes, limit is {limits.max_trust_root_bytes}"
        )
    try:
        return parse_canonical(SignedTrustRoot, data, f"{source}: trust root")
    except ValueError as error:
        raise TrustRootFormatError(str(error)) from error


def sign_trust_root(signed: SignedTrustRoot, signature: Signature) -> SignedTrustRoot:
    """Add (or replace) one key's signature on a trust root."""
    kept = [existing for existing in signed.signatures if existing.keyid != signature.keyid]
    return SignedTrustRoot(signed=signed.signed, signatures=sorted_signatures([*kept, signature]))


def verify_rotation(current: TrustRoot, candidate: SignedTrustRoot, source: str) -> TrustRoot:
    """Accept the next version of the trust root, or refuse it.

    Checks, in this order (TUF specification, client workflow "Update the root role"): the version is exactly
    one more than the current one; no signature is bad or by a key that neither root lists for the root role;
    a threshold of the current root's ``root`` keys signed; a threshold of the candidate's own ``root`` keys
    signed. Expiry of the final root is checked by the caller against the trusted time, after the whole chain
    is applied.

    Args:
        current: the trusted root.
        candidate: the proposed next root with its signatures.
        source: where the candidate came from, for messages.

    Returns:
        The candidate's root, now trusted.

    Raises:
        RollbackError: if the candidate's version is not above the current one.
        RotationError: if it skips a version.
        BadSignatureError, UnknownKeyError, ThresholdNotMetError: if the signatures do not authorize it.
    """
    new = candidate.signed
    what = f"{source}: trust root version {new.version}"
    if new.version <= current.version:
        raise RollbackError(f"{what} is not newer than the trusted version {current.version}")
    if new.version != current.version + 1:
        raise RotationError(
            f"{what} skips versions: the trusted version is {current.version}, "
            f"apply {current.version + 1} first"
        )
    document = new.signed_bytes()
    old_keys = current.role_keys(RoleName.ROOT)
    new_keys = new.role_keys(RoleName.ROOT)
    union = {**old_keys, **new_keys}
    check_threshold(
        tally_signatures(ROOT_TYPE, document, candidate.signatures, union),
        threshold=0,
        what=what,
        role="root (old or new)",
        strict=True,
    )
    check_threshold(
        tally_signatures(ROOT_TYPE, document, candidate.signatures, old_keys),
        threshold=current.roles[RoleName.ROOT].threshold,
        what=f"{what} (signatures of the trusted version {current.version})",
        role="root",
        strict=False,
    )
    check_threshold(
        tally_signatures(ROOT_TYPE, document, candidate.signatures, new_keys),
        threshold=new.roles[RoleName.ROOT].threshold,
        what=f"{what} (signatures of its own root keys)",
        role="root",
        strict=False,
    )
    dropped = sorted(set(current.keys) - set(new.keys))
    _logger.info(
        "trust root rotated from version %d to %d; %d key(s) dropped",
        current.version,
        new.version,
        len(dropped),
    )
    return new
