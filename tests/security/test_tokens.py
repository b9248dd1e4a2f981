"""Token verification: every accepted token is signed by the configured key with its one algorithm."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def hostile_tokens(key: PrivateKeyTypes) -> dict[str, str]:
    """Tokens that once escaped the checks (UNKNOWN with a traceback, or accepted), by name."""
    now = int(time.time())

    def signed(**overrides: object) -> str:
        return jwt.encode(claims("read", **overrides), key, algorithm="EdDSA")  # type: ignore[arg-type]

    return {
        # no signature is needed to reach the header's checks
        "crit unknown": forge({"alg": "EdDSA", "crit": ["exp-v2"]}, claims("read")),
        "crit not a list": forge({"alg": "EdDSA", "crit": "exp-v2"}, claims("read")),
        "crit not strings": forge({"alg": "EdDSA", "crit": [1]}, claims("read")),
        "exp huge": signed(exp=10**400),
        "exp past 9999": signed(exp=253402300800),
        "exp 2**63": signed(exp=2**63),
        "exp negative": signed(exp=-(10**400)),
        "exp text": signed(exp="tomorrow"),
        "exp bool": signed(exp=True),
        "exp infinite": signed(exp=float("inf")),
        "exp list": signed(exp=[now + 60]),
        "iat huge": signed(iat=10**400),
        "iat negative": signed(iat=-(10**400)),
        "iat negative small": signed(iat=-1),
        "iat text": signed(iat="now"),
        "iat bool": signed(iat=True),
        "nbf huge": signed(nbf=10**400),
        "nbf negative": signed(nbf=-5),
        "nbf text": signed(nbf="now"),
        "nbf bool": signed(nbf=False),
    }


HOSTILE_REASONS = {
    "crit unknown": r"header is refused: Unsupported critical extension: exp-v2",
    "crit not a list": r"'crit' header",
    "crit not strings": r"'crit' header",
    "exp huge": r"claim 'exp' must be a time in seconds since the epoch, from 0 to 253402300799",
    "exp past 9999": r"claim 'exp' must be",
    "exp 2**63": r"claim 'exp' must be",
    "exp negative": r"claim 'exp' must be",
    "exp text": r"claim 'exp' must be",
    "exp bool": r"claim 'exp' must be",
    "exp infinite": r"claim 'exp' must be",
    "exp list": r"claim 'exp' must be",
    "iat huge": r"claim 'iat' must be",
    "iat negative": r"claim 'iat' must be",
    "iat negative small": r"claim 'iat' must be",
    "iat text": r"claim 'iat' must be",
    "iat bool": r"claim 'iat' must be",
    "nbf huge": r"claim 'nbf' must be",
    "nbf negative": r"claim 'nbf' must be",
    "nbf text": r"claim 'nbf' must be",
    "nbf bool": r"claim 'nbf' must be",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_REASONS))
def test_hostile_headers_and_claims_are_refused_with_a_reason(
    signing_key: PrivateKeyTypes, name: str
) -> None:
    verifier = TokenVerifier(load_public_key(public_key_pem(signing_key), "key.pub"))
    token = hostile_tokens(signing_key)[name]
    with pytest.raises(AuthenticationError, match=HOSTILE_REASONS[name]):
        verifier.verify(token)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
_CLAIM_NAMES = st.sampled_from(["aud", "iss", "sub", "scope", "exp", "iat", "nbf", "jti"])
_HEADER_NAMES = st.sampled_from(["alg", "typ", "kid", "crit", "b64", "cty", "x5c"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    claim_overrides=st.dictionaries(_CLAIM_NAMES, _JSON, max_size=4),
    header_overrides=st.dictionaries(_HEADER_NAMES, _JSON, max_size=3),
    signed=st.booleans(),
)
def test_any_header_or_claims_end_in_a_verdict_never_another_exception(
    signing_key: PrivateKeyTypes,
    claim_overrides: dict[str, Any],
    header_overrides: dict[str, Any],
    signed: bool,
) -> None:
    """Whatever JSON a token carries, the verifier accepts it or refuses it with a reason (UNAUTHENTICATED)."""
    verifier = TokenVerifier(load_public_key(public_key_pem(signing_key), "key.pub"))
    payload = {**claims("read"), **claim_overrides}
    if signed and not header_overrides:
        try:
            token = jwt.encode(payload, signing_key, algorithm="EdDSA")  # type: ignore[arg-type]
        except (TypeError, ValueError):  # not JSON the library will write (NaN is written, for one)
            return
    else:
        token = forge({"alg": "EdDSA", **header_overrides}, payload)
    try:
        verifier.verify(token)
    except AuthenticationError as error:
        assert str(error)
