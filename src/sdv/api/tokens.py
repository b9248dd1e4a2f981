"""JWT bearer tokens as KUKSA uses them: verification on the server, creation and keys for integrators.

A token is a JWT signed with the integrator's private key; the server holds the public key. Its claims are
``sub`` (who), ``iss`` (who issued it), ``aud`` (must contain ``kuksa.val``), ``iat``, ``exp`` and ``scope`` (the
rights, see :mod:`sdv.broker.access`). It travels as ``authorization: Bearer <jwt>`` call metadata.

Invariants:

* The algorithm is pinned to the type of the configured public key (RSA: ``RS256``, P-256: ``ES256``, Ed25519:
  ``EdDSA``). A token naming any other algorithm is refused before its signature is looked at; ``none`` and the
  HMAC algorithms are never accepted, whatever the key (an HS256 token "signed" with the public key is the
  classic confusion attack).
* ``exp``, ``iat``, ``aud``, ``sub`` and ``scope`` are required; a token without one is refused.
* A header with ``crit`` is refused (this server implements no critical extension, RFC 7515 §4.1.11).
* ``exp``, ``iat`` and ``nbf`` are times (RFC 7519 §2 NumericDate) from 0 to :data:`LATEST_TIME`, checked before
  the library compares them with the clock: a boolean, a string, a negative number or ``10**400`` is refused.
* Every refusal is an :class:`~sdv.errors.AuthenticationError` whose message says what was wrong (expired, wrong
  audience, bad signature, algorithm), never a bare "invalid token".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from sdv.broker.access import Access, ScopeError, parse_scope
from sdv.errors import AuthenticationError

__all__ = [
    "AUDIENCE",
    "LATEST_TIME",
    "TokenKeyType",
    "TokenVerifier",
    "algorithm_for",
    "create_token",
    "generate_key",
    "load_public_key",
    "load_token_signing_key",
    "private_key_pem",
    "public_key_pem",
]

AUDIENCE = "kuksa.val"
"""The audience every token must name (KUKSA's)."""
_REQUIRED_CLAIMS = ("exp", "iat", "aud", "sub", "scope")
_TIME_CLAIMS = ("exp", "iat", "nbf")
LATEST_TIME = 253_402_300_799
"""The latest time a token may name, 9999-12-31T23:59:59Z (seconds since the epoch)."""


class TokenKeyType(StrEnum):
    """Key types for signing tokens."""

    ED25519 = "ed25519"
    ECDSA_P256 = "ecdsa-p256"
    RSA = "rsa"


def generate_key(key_type: TokenKeyType = TokenKeyType.ED25519) -> PrivateKeyTypes:
    """A new private key of ``key_type`` (RSA keys have 3072 bits)."""
    if key_type is TokenKeyType.RSA:
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if key_type is TokenKeyType.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def private_key_pem(key: PrivateKeyTypes) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: PrivateKeyTypes) -> bytes:
    """The public half of ``key`` as SubjectPublicKeyInfo PEM."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def algorithm_for(key: PublicKeyTypes | PrivateKeyTypes, source: str = "the key") -> str:
    """The one JWT algorithm a key of this type signs with.

    Raises:
        AuthenticationError: for a key type tokens do not use.
    """
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "ES256"
        raise AuthenticationError(f"{source}: an EC key on {key.curve.name}; tokens use P-256 (ES256)")
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise AuthenticationError(f"{source}: a {type(key).__name__}; tokens use RSA, P-256 or Ed25519 keys")


def load_public_key(data: bytes, source: str) -> PublicKeyTypes:
    """A PEM public key (a private key is refused: the server must never hold one).

    Raises:
        AuthenticationError: not a PEM public key of a supported type.
    """
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as error:
        hint = " (this is a private key; give the public one)" if b"PRIVATE KEY" in data else ""
        raise AuthenticationError(f"{source}: not a PEM public key{hint}") from error
    algorithm_for(key, source)
    return key


def load_token_signing_key(data: bytes, source: str) -> PrivateKeyTypes:
    """An unencrypted PEM private key of a supported type.

    Raises:
        AuthenticationError: not an unencrypted PEM private key of a supported type.
    """
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as error:
        raise AuthenticationError(f"{source}: not an unencrypted PEM private key") from error
    algorithm_for(key, source)
    return key


def create_token(
    key: PrivateKeyTypes,
    scope: str,
    *,
    subject: str = "sdv-app",
    issuer: str = "sdv",
    audience: str = AUDIENCE,
    ttl_s: float = 3600.0,
    now: float | None = None,
) -> str:
    """A signed token granting ``scope``.

    Raises:
        ScopeError: ``scope`` does not parse (a token that could never be used is not issued).
    """
    parse_scope(scope, subject)
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": subject,
        "iss": issuer,
        "aud": [audience],
        "iat": issued,
        "exp": issued + max(1, round(ttl_s)),
        "scope": scope,
    }
    return jwt.encode(claims, key, algorithm=algorithm_for(key))  # type: ignore[arg-type]


@dataclass(frozen=True)
class TokenVerifier:
    """Checks bearer tokens against one public key.

    Args:
        key: the public key tokens are signed with.
        audience: the audience a token must name.
        issuer: the issuer a token must name, or None to accept any.
        leeway_s: clock tolerance for ``exp`` and ``iat``.
    """

    key: PublicKeyTypes
    audience: str = AUDIENCE
    issuer: str | None = None
    leeway_s: float = 0.0

    @property
    def algorithm(self) -> str:
        """The one algorithm accepted."""
        return algorithm_for(self.key)

    def verify(self, token: str) -> tuple[Access, float]:
        """The rights a token grants and when it expires (seconds since the epoch).

        Raises:
            AuthenticationError: naming what is wrong with the token.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as error:
            raise AuthenticationError(f"the bearer token is not a JWT: {error}") from error
        except jwt.InvalidTokenError as error:  # the library's own header checks: "crit" among them
            raise AuthenticationError(
                f"the token's header is refused: {error} (this server implements no critical extension)"
            ) from error
        algorithm = header.get("alg")
        if algorithm != self.algorithm:
            raise AuthenticationError(
                f"the token is signed with {algorithm!r}; this server accepts only {self.algorithm}"
            )
        _check_times(token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.key,  # type: ignore[arg-type]
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": list(_REQUIRED_CLAIMS)},
            )
        except jwt.ExpiredSignatureError as error:
            raise AuthenticationError("the token has expired") from error
        except jwt.InvalidAudienceError as error:
            raise AuthenticationError(f"the token's audience does not include {self.audience!r}") from error
        except jwt.InvalidIssuerError as error:
            raise AuthenticationError(f"the token was not issued by {self.issuer!r}") from error
        except jwt.InvalidSignatureError as error:
            raise AuthenticationError(
                "the token's signature does not verify with the configured key"
            ) from error
        except jwt.MissingRequiredClaimError as error:
            raise AuthenticationError(f"the token lacks the claim {error.claim!r}") from error
        except jwt.InvalidTokenError as error:
            raise AuthenticationError(f"the token is not valid: {error}") from error
        scope, subject = claims["scope"], claims["sub"]
        if not isinstance(scope, str) or not isinstance(subject, str):
            raise AuthenticationError("the token's scope and sub claims must be strings")
        try:
            access = parse_scope(scope, subject)
        except ScopeError as error:
            raise AuthenticationError(f"the token's scope is malformed: {error}") from error
        return access, float(claims["exp"])


def _check_times(token: str) -> None:
    """Refuse a token whose ``exp``, ``iat`` or ``nbf`` is not a time from 0 to :data:`LATEST_TIME`.

    Read before the signature is checked: the library converts them to floats and compares them with the clock,
    which fails outside the checks (``OverflowError``) or accepts ``True`` and ``-10**400``.

    Raises:
        AuthenticationError: naming the claim and the range.
    """
    try:
        unverified: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as error:
        raise AuthenticationError(f"the bearer token is not a JWT: {error}") from error
    for name in _TIME_CLAIMS:
        if name not in unverified:
            continue
        value = unverified[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= LATEST_TIME:
            raise AuthenticationError(
                f"the token's claim {name!r} must be a time in seconds since the epoch, from 0 to {LATEST_TIME}"
            )
