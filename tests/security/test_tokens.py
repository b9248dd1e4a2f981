"""Token verification: every accepted token is signed by the configured key with its one algorithm."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from sdv.api.tokens import (
    TokenKeyType,
    TokenVerifier,
    create_token,
    generate_key,
    load_public_key,
    public_key_pem,
)
from sdv.broker.access import Action, ScopeError
from sdv.errors import AuthenticationError
from tests.security.conftest import Tokens, claims, forge


@pytest.mark.parametrize("key_type", list(TokenKeyType))
def test_each_key_type_verifies_its_tokens(key_type: TokenKeyType) -> None:
    key = generate_key(key_type)
    verifier = TokenVerifier(load_public_key(public_key_pem(key), "key.pub"))
    access, expires = verifier.verify(
        create_token(key, "actuate:Vehicle.Body.Lights", subject="hmi", ttl_s=60)
    )
    assert verifier.algorithm == {"ed25519": "EdDSA", "ecdsa-p256": "ES256", "rsa": "RS256"}[key_type.value]
    assert access.subject == "hmi"
    assert access.allows(Action.ACTUATE, "Vehicle.Body.Lights.Beam.Low.IsOn")
    assert not access.allows(Action.READ, "Vehicle.Speed")
    assert time.time() + 50 < expires <= time.time() + 61


REASONS = {
    "expired": "has expired",
    "wrong audience": "audience does not include 'kuksa.val'",
    "bad signature": "signature does not verify",
    "alg none": "signed with 'none'; this server accepts only EdDSA",
    "hs256 with public key": "signed with 'HS256'; this server accepts only EdDSA",
    "not a jwt": "not a JWT",
    "no exp": "lacks the claim 'exp'",
}


@pytest.mark.parametrize("attack", sorted(REASONS))
def test_attacks_are_refused_with_their_reason(tokens: Tokens, attack: str) -> None:
    verifier = TokenVerifier(load_public_key(tokens.public_pem, "key.pub"))
    token = tokens.attacks("read")[attack]
    assert token is not None
    with pytest.raises(AuthenticationError, match=REASONS[attack]):
        verifier.verify(token)


def test_a_token_of_another_key_type_is_refused_by_algorithm(tokens: Tokens) -> None:
    rsa_key = generate_key(TokenKeyType.RSA)
    verifier = TokenVerifier(load_public_key(tokens.public_pem, "key.pub"))
    with pytest.raises(AuthenticationError, match="signed with 'RS256'"):
        verifier.verify(create_token(rsa_key, "read"))


def test_issuer_is_checked_when_configured(signing_key: PrivateKeyTypes) -> None:
    verifier = TokenVerifier(load_public_key(public_key_pem(signing_key), "k"), issuer="oem-auth")
    with pytest.raises(AuthenticationError, match="not issued by 'oem-auth'"):
        verifier.verify(create_token(signing_key, "read", issuer="sdv"))
    verifier.verify(create_token(signing_key, "read", issuer="oem-auth"))


def test_a_malformed_scope_claim_is_an_authentication_error(signing_key: PrivateKeyTypes) -> None:
    verifier = TokenVerifier(load_public_key(public_key_pem(signing_key), "k"))
    token = jwt.encode(claims("write:Vehicle"), signing_key, algorithm="EdDSA")  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError, match="scope is malformed"):
        verifier.verify(token)


def test_a_private_key_is_not_accepted_as_the_server_key(signing_key: PrivateKeyTypes) -> None:
    from sdv.api.tokens import private_key_pem

    with pytest.raises(AuthenticationError, match="private key; give the public one"):
        load_public_key(private_key_pem(signing_key), "server.pem")


def test_forged_hs256_would_verify_under_plain_hmac(tokens: Tokens) -> None:
    """The forged token is a real HS256 token keyed with the public key: refusing it is the server's doing."""
    token = forge({"alg": "HS256"}, claims("read"), tokens.public_pem)
    decoded = jwt.api_jws.PyJWS(algorithms=["HS256"])
    signing_input, _, signature = token.rpartition(".")
    algorithm = decoded.get_algorithm_by_name("HS256")
    assert algorithm.verify(signing_input.encode(), tokens.public_pem, jwt.utils.base64url_decode(signature))


NO_BREAK_SPACE_SCOPE = "read:Vehicle.Cabin\u00a0read"


def test_a_scope_read_two_ways_is_never_issued(signing_key: PrivateKeyTypes) -> None:
    with pytest.raises(ScopeError, match=r"U\+00A0 at position 18"):
        create_token(signing_key, NO_BREAK_SPACE_SCOPE)


def test_a_scope_read_two_ways_is_refused_when_checked(signing_key: PrivateKeyTypes) -> None:
    verifier = TokenVerifier(load_public_key(public_key_pem(signing_key), "key.pub"))
    token = jwt.encode(claims(NO_BREAK_SPACE_SCOPE), signing_key, algorithm="EdDSA")  # type: ignore[arg-type]
    with pytest.raises(AuthenticationError, match=r"scope is malformed: .*U\+00A0 at position 18"):
        verifier.verify(token)
