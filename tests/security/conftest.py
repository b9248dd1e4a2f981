"""Keys, tokens and forged tokens for the security tests.

Forged tokens are built by hand (base64url JSON and a signature), because a JWT library refuses to produce the
attacks: ``alg: none``, and HS256 keyed with the server's public key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from sdv.api.tokens import TokenKeyType, create_token, generate_key, public_key_pem


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(scope: str = "read", **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "app", "iss": "sdv", "aud": ["kuksa.val"], "iat": now, "exp": now + 600, "scope": scope}
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def forge(header: dict[str, Any], payload: dict[str, Any], hmac_key: bytes | None = None) -> str:
    """A JWT with any header; signed with HMAC-SHA256 under ``hmac_key``, or with an empty signature."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = (
        b"" if hmac_key is None else hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    )
    return f"{signing_input}.{_b64(signature)}"


@pytest.fixture(autouse=True)
def no_leaked_threads(no_leaked_threads: None) -> None:
    """Every test of this package runs under the shared leaked-thread check (tests/conftest.py)."""


@pytest.fixture(scope="session")
def signing_key() -> PrivateKeyTypes:
    return generate_key(TokenKeyType.ED25519)


@pytest.fixture(scope="session")
def other_key() -> PrivateKeyTypes:
    return generate_key(TokenKeyType.ED25519)


class Tokens:
    """Tokens signed by the server's key, and the attacks on it."""

    def __init__(self, key: PrivateKeyTypes, other: PrivateKeyTypes) -> None:
        self.key = key
        self.other = other
        self.public_pem = public_key_pem(key)

    def valid(self, scope: str) -> str:
        return create_token(self.key, scope, subject="app")

    def attacks(self, scope: str) -> dict[str, str | None]:
        """Each way a caller may try to get in without the right token, by name (None: no token at all)."""
        import jwt

        return {
            "no token": None,
            "expired": create_token(self.key, scope, ttl_s=1, now=time.time() - 3600),
            "wrong audience": create_token(self.key, scope, audience="someone.else"),
            "bad signature": create_token(self.other, scope),
            "alg none": forge({"alg": "none", "typ": "JWT"}, claims(scope)),
            "hs256 with public key": forge({"alg": "HS256", "typ": "JWT"}, claims(scope), self.public_pem),
            "not a jwt": "not-a-token",
            "no exp": jwt.encode(claims(scope, exp=None), self.key, algorithm="EdDSA"),  # type: ignore[arg-type]
        }


@pytest.fixture(scope="session")
def tokens(signing_key: PrivateKeyTypes, other_key: PrivateKeyTypes) -> Tokens:
    return Tokens(signing_key, other_key)
