"""Signing keys: Ed25519 and ECDSA P-256, their file formats, key ids, signatures.

Invariants:

* A public key has one canonical record, :class:`PublicKeyRecord`: the algorithm and the raw public key in
  lowercase hex (32 bytes for Ed25519, the 65-byte uncompressed point for P-256). Loading a record re-encodes
  the key and refuses any other spelling, so a key id names exactly one key.
* A key id is the SHA-256 of the record's canonical JSON (as TUF derives key ids from the key, specification
  "File formats: general principles"), so it cannot be chosen independently of the key.
* ECDSA signs SHA-256 digests and signatures are DER-encoded; Ed25519 signatures are the 64 raw bytes. Both
  are stored as lowercase hex. A malformed signature simply does not verify.
* Key files are PEM: SubjectPublicKeyInfo for public keys, unencrypted PKCS#8 for private keys, so they
  interoperate with OpenSSL and hardware security modules' import tools.

This module performs no I/O: it turns bytes into keys and keys into bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from pydantic import BaseModel, ConfigDict, Field

from sdv.ota.bundle.canonical import canonical_bytes
from sdv.ota.errors import KeyFormatError

__all__ = [
    "HexSignature",
    "KeyId",
    "KeyType",
    "PrivateKey",
    "PublicKey",
    "PublicKeyRecord",
    "Signature",
    "generate_private_key",
    "load_private_key_pem",
    "load_public_key_pem",
]

KeyId = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the key's canonical record")]
"""A key id: 64 lowercase hex digits."""

HexSignature = Annotated[
    str, Field(pattern=r"^([0-9a-f]{2}){8,256}$", description="the signature bytes in lowercase hex")
]
"""Signature bytes in lowercase hex."""


class KeyType(StrEnum):
    """The supported signature algorithms."""

    ED25519 = "ed25519"
    ECDSA_P256 = "ecdsa-p256"


class PublicKeyRecord(BaseModel):
    """The canonical description of a public key, as stored in trust roots.

    Attributes:
        type: the algorithm.
        public: the raw public key in lowercase hex (Ed25519: 32 bytes; P-256: 65-byte uncompressed point).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: KeyType
    public: str = Field(pattern=r"^([0-9a-f]{2}){32,65}$")

    @property
    def keyid(self) -> str:
        """SHA-256 (hex) of the record's canonical JSON."""
        return hashlib.sha256(canonical_bytes(self)).hexdigest()


class Signature(BaseModel):
    """One detached signature over a canonical document.

    Attributes:
        keyid: the id of the key that made it.
        sig: the signature in lowercase hex.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    keyid: KeyId
    sig: HexSignature


_Verifier = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
_Signer = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


def _raw_public(key: _Verifier) -> bytes:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _key_type(key: _Verifier) -> KeyType:
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyType.ED25519
    if not isinstance(key.curve, ec.SECP256R1):
        raise KeyFormatError(
            f"unsupported elliptic curve {key.curve.name}; only P-256 (secp256r1) is supported"
        )
    return KeyType.ECDSA_P256


@dataclass(frozen=True)
class PublicKey:
    """A public key able to check signatures.

    Attributes:
        record: the canonical record (algorithm and raw key).
    """

    record: PublicKeyRecord
    _key: _Verifier

    @classmethod
    def from_record(cls, record: PublicKeyRecord) -> PublicKey:
        """Load a key from its record.

        Raises:
            KeyFormatError: if the bytes are not a valid key of the stated type or not canonically encoded.
        """
        raw = bytes.fromhex(record.public)
        key: _Verifier
        try:
            if record.type is KeyType.ED25519:
                key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
            else:
                key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError as error:
            raise KeyFormatError(
                f"{record.type.value} public key {record.public[:16]}...: {error}"
            ) from error
        if _raw_public(key) != raw:
            raise KeyFormatError(
                f"{record.type.value} public key {record.public[:16]}... is not canonically encoded"
            )
        return cls(record, key)

    @property
    def keyid(self) -> str:
        """The key id (SHA-256 of the canonical record)."""
        return self.record.keyid

    @property
    def type(self) -> KeyType:
        """The algorithm."""
        return self.record.type

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether ``signature`` is this key's valid signature of ``message``."""
        try:
            if isinstance(self._key, ed25519.Ed25519PublicKey):
                self._key.verify(signature, message)
            else:
                self._key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_pem(self) -> bytes:
        """The key as a PEM SubjectPublicKeyInfo block."""
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass(frozen=True)
class PrivateKey:
    """A private key able to sign."""

    _key: _Signer

    @property
    def public_key(self) -> PublicKey:
        """The matching public key."""
        public = self._key.public_key()
        record = PublicKeyRecord(type=_key_type(public), public=_raw_public(public).hex())
        return PublicKey(record, public)

    @property
    def keyid(self) -> str:
        """The key id of the matching public key."""
        return self.public_key.keyid

    def sign(self, message: bytes) -> Signature:
        """Sign ``message`` (Ed25519, or ECDSA P-256 over SHA-256 with a DER signature)."""
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            raw = self._key.sign(message)
        else:
            raw = self._key.sign(message, ec.ECDSA(hashes.SHA256()))
        return Signature(keyid=self.keyid, sig=raw.hex())

    def to_pem(self) -> bytes:
        """The key as an unencrypted PKCS#8 PEM block (store it with mode 0600)."""
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def generate_private_key(key_type: KeyType = KeyType.ED25519) -> PrivateKey:
    """Create a fresh private key of the given type."""
    if key_type is KeyType.ED25519:
        return PrivateKey(ed25519.Ed25519PrivateKey.generate())
    return PrivateKey(ec.generate_private_key(ec.SECP256R1()))


def load_private_key_pem(data: bytes, source: str) -> PrivateKey:
    """Load a PKCS#8 (or traditional) PEM private key.

    Args:
        data: the PEM text.
        source: where it came from, for error messages.

    Raises:
        KeyFormatError: if the data is not an unencrypted Ed25519 or P-256 private key.
    """
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise KeyFormatError(f"{source}: not an unencrypted PEM private key ({error})") from error
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return PrivateKey(key)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        _key_type(key.public_key())
        return PrivateKey(key)
    raise KeyFormatError(f"{source}: unsupported key type {type(key).__name__}; use ed25519 or ecdsa-p256")


def load_public_key_pem(data: bytes, source: str) -> PublicKey:
    """Load a PEM SubjectPublicKeyInfo public key.

    Args:
        data: the PEM text.
        source: where it came from, for error messages.

    Raises:
        KeyFormatError: if the data is not an Ed25519 or P-256 public key.
    """
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise KeyFormatError(f"{source}: not a PEM public key ({error})") from error
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise KeyFormatError(
            f"{source}: unsupported key type {type(key).__name__}; use ed25519 or ecdsa-p256"
        )
    try:
        key_type = _key_type(key)
    except KeyFormatError as error:
        raise KeyFormatError(f"{source}: {error}") from error
    return PublicKey(PublicKeyRecord(type=key_type, public=_raw_public(key).hex()), key)
