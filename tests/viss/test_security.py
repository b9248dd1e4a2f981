"""VISS with tokens and TLS: the same verifier, scopes and certificates as gRPC, over WebSocket and HTTP.

The rule the project keeps everywhere: a signal the caller may not read is answered exactly as one that does not
exist, so that the catalogue cannot be probed.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from sdv.api.tokens import create_token, generate_key, public_key_pem
from tests.security.pki import Authority
from tests.viss.conftest import ServeProcess, connect, notifications, request, serve_viss

SPEED = "Vehicle.Speed"
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
SCOPE = "read:Vehicle.Speed actuate:Vehicle.Body.Lights"


@pytest.fixture(scope="module")
def key() -> PrivateKeyTypes:
    return generate_key()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory, key: PrivateKeyTypes) -> tuple[Path, list[str]]:
    """The CA file and the ``sdv serve`` arguments of TLS with token checks."""
    directory = tmp_path_factory.mktemp("viss-pki")
    authority = Authority("viss test CA")
    cert, server_key = authority.issue("localhost", server=True).write(directory, "server")
    ca = directory / "ca.pem"
    ca.write_bytes(authority.pem)
    public = directory / "jwt.pub"
    public.write_bytes(public_key_pem(key))
    return ca, ["--jwt-public-key", str(public), "--tls-cert", str(cert), "--tls-key", str(server_key)]


@pytest.fixture(scope="module")
def server(pki: tuple[Path, list[str]]) -> Iterator[ServeProcess]:
    with serve_viss(*pki[1]) as running:
        yield running


@pytest.fixture(scope="module")
def tls(pki: tuple[Path, list[str]]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki[0]))


def _wss(server: ServeProcess) -> str:
    return f"wss://localhost:{server.viss_port}"


async def _connect(server: ServeProcess, tls: ssl.SSLContext) -> Any:
    return await websockets.connect(_wss(server), subprotocols=[websockets.Subprotocol("VISSv2")], ssl=tls)


def _error(answer: dict[str, Any]) -> tuple[str, str]:
    return answer["error"]["number"], answer["error"]["reason"]


async def test_plaintext_is_refused_on_a_tls_port(server: ServeProcess) -> None:
    with pytest.raises((websockets.InvalidMessage, ConnectionError, OSError, EOFError)):
        async with await connect(server):
            pass


async def test_a_request_needs_a_valid_token(
    server: ServeProcess, tls: ssl.SSLContext, key: PrivateKeyTypes
) -> None:
    expired = create_token(key, SCOPE, now=time.time() - 7200, ttl_s=60)
    other = create_token(generate_key(), SCOPE)
    async with await _connect(server, tls) as connection:
        missing = await request(connection, {"action": "get", "path": SPEED, "requestId": "1"})
        wrong = await request(
            connection, {"action": "get", "path": SPEED, "requestId": "2", "authorization": other}
        )
        late = await request(
            connection, {"action": "get", "path": SPEED, "requestId": "3", "authorization": expired}
        )
        junk = await request(
            connection, {"action": "get", "path": SPEED, "requestId": "4", "authorization": "x"}
        )
    assert _error(missing) == ("401", "missing_token")
    assert _error(wrong) == ("401", "invalid_token") and "signature" in wrong["error"]["message"]
    assert _error(late) == ("401", "expired_token")
    assert _error(junk) == ("401", "invalid_token")


async def test_the_token_grants_its_scope_and_holds_for_the_connection(
    server: ServeProcess, tls: ssl.SSLContext, key: PrivateKeyTypes
) -> None:
    token = create_token(key, SCOPE)
    async with await _connect(server, tls) as connection:
        first = await request(
            connection, {"action": "get", "path": SPEED, "requestId": "1", "authorization": token}
        )
        later = await request(connection, {"action": "get", "path": SPEED, "requestId": "2"})
        actuated = await request(
            connection, {"action": "set", "path": LOW_BEAM, "value": "true", "requestId": "3"}
        )
        not_actuator_right = await request(
            connection, {"action": "set", "path": SPEED, "value": "3", "requestId": "4"}
        )
    assert "data" in first and "data" in later
    assert "error" not in actuated
    assert _error(not_actuator_right) == ("403", "forbidden_request")


@pytest.mark.parametrize(
    ("forbidden", "missing"),
    [
        ("Vehicle.Cabin.Door.Row1.DriverSide.IsOpen", "Vehicle.Cabin.Door.Row9.DriverSide.IsOpen"),
        ("Vehicle.Cabin", "Vehicle.Cabinet"),
        ("Vehicle.Cabin.Door.*.*.IsOpen", "Vehicle.Cabin.Window.*.*.IsOpen"),
    ],
)
async def test_a_signal_the_caller_may_not_read_is_answered_as_an_unknown_one(
    server: ServeProcess, tls: ssl.SSLContext, key: PrivateKeyTypes, forbidden: str, missing: str
) -> None:
    token = create_token(key, SCOPE)
    answers = {}
    async with await _connect(server, tls) as connection:
        for path in (forbidden, missing):
            for action in ("get", "subscribe", "set"):
                message = {
                    "action": action,
                    "path": path,
                    "requestId": "r",
                    "authorization": token,
                    "value": "1",
                }
                answer = await request(connection, message)
                answers[(path, action)] = (_error(answer), answer["error"]["message"].replace(path, "PATH"))
    for action in ("get", "subscribe", "set"):
        assert answers[(forbidden, action)] == answers[(missing, action)]
    # (a set naming a wildcard is refused as malformed before anything is looked up)
    for action in ("get", "subscribe") if "*" in forbidden else ("get", "subscribe", "set"):
        assert answers[(forbidden, action)][0] == ("404", "unavailable_data")


async def test_a_subscription_ends_with_expired_token_when_its_token_expires(
    server: ServeProcess, tls: ssl.SSLContext, key: PrivateKeyTypes
) -> None:
    token = create_token(key, "read", ttl_s=2)
    async with await _connect(server, tls) as connection:
        answer = await request(
            connection,
            {
                "action": "subscribe",
                "path": "Vehicle.VehicleIdentification.Brand",
                "requestId": "s",
                "authorization": token,
                "filter": {"variant": "timebased", "parameter": {"period": "100"}},
            },
        )
        subscription_id = answer["subscriptionId"]
        while "error" not in (last := (await notifications(connection, subscription_id, 1))[0]):
            assert last["data"]["dp"]["value"] == "SDV Demo"
    assert _error(last) == ("401", "expired_token")


async def test_http_takes_the_token_in_the_authorization_header(
    server: ServeProcess, tls: ssl.SSLContext, key: PrivateKeyTypes
) -> None:
    token = create_token(key, SCOPE)
    base = f"https://localhost:{server.viss_port}"
    async with httpx.AsyncClient(verify=tls) as client:
        without = await client.get(f"{base}/Vehicle/Speed")
        granted = await client.get(f"{base}/Vehicle/Speed", headers={"Authorization": f"Bearer {token}"})
        hidden = await client.get(f"{base}/Vehicle/Cabin", headers={"Authorization": token})
        setting = await client.post(
            f"{base}/Vehicle/Body/Lights/Beam/Low/IsOn",
            json={"value": "false"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert without.status_code == 401 and without.json()["error"]["reason"] == "missing_token"
    assert granted.status_code == 200 and granted.json()["data"]["path"] == SPEED
    assert hidden.status_code == 404 and hidden.json()["error"]["reason"] == "unavailable_data"
    assert setting.status_code == 200
