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
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from sdv._proto.kuksa.val.v1 import val_pb2_grpc as v1_grpc
from sdv._proto.kuksa.val.v2 import val_pb2_grpc as v2_grpc
from sdv.api.security import ServerSecurity
from sdv.api.server import SdvServer
from sdv.api.tokens import (
    TokenKeyType,
    TokenVerifier,
    create_token,
    generate_key,
    load_public_key,
    public_key_pem,
)
from sdv.broker import HalBridge
from sdv.broker.access import UNRESTRICTED
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import VehicleDefinition

SPEED = "Vehicle.Speed"
Metadata = tuple[tuple[str, str], ...]


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


@dataclass
class Stubs:
    channel: grpc.aio.Channel
    speed_id: int

    @property
    def v2(self) -> v2_grpc.VALStub:
        return v2_grpc.VALStub(self.channel)

    @property
    def v1(self) -> v1_grpc.VALStub:
        return v1_grpc.VALStub(self.channel)


@pytest.fixture(scope="module")
def bridge(demo_vehicle: VehicleDefinition) -> Iterator[HalBridge]:
    """The demo vehicle's HAL replaying its drive, behind a broker (one per test module)."""
    bridge = HalBridge(Hal(demo_vehicle))
    bridge.start()
    yield bridge
    bridge.stop()


@pytest.fixture
async def stubs(bridge: HalBridge, demo_vehicle: VehicleDefinition, tokens: Tokens) -> AsyncIterator[Stubs]:
    """A real server on 127.0.0.1 that checks tokens of :func:`tokens`, with the demo's typed services."""
    verifier = TokenVerifier(load_public_key(tokens.public_pem, "server.pub"))
    server = SdvServer(
        bridge.broker,
        port=0,
        services=demo_vehicle.config.services,
        security=ServerSecurity(verifier=verifier),
    )
    await server.start()
    try:
        async with grpc.aio.insecure_channel(server.target) as channel:
            yield Stubs(channel, bridge.broker.metadata(SPEED, access=UNRESTRICTED).id)
    finally:
        await server.stop(grace=0)


def bearer(token: str | None) -> Metadata:
    """Call metadata carrying ``token`` (none for None)."""
    return () if token is None else (("authorization", f"Bearer {token}"),)
