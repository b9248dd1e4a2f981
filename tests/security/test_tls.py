"""TLS and mutual TLS on a real server on 127.0.0.1: who gets through the handshake, and kuksa-client with a
token over TLS against ``sdv serve`` as a process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from sdv._proto.kuksa.val.v2 import types_pb2, val_pb2
from sdv.api.security import ServerSecurity
from sdv.api.server import SdvServer
from sdv.broker import Broker
from sdv.client import ChannelSecurity, VehicleClient
from sdv.client.errors import ServerUnreachableError
from sdv.hal.vehicle import VehicleDefinition
from tests.acceptance.test_kuksa_client import kuksa_client_secured
from tests.security.conftest import Tokens
from tests.security.pki import Authority
from tests.serve_process import serving

SPEED = "Vehicle.Speed"


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority("sdv test CA")


@pytest.fixture
async def mtls_server(demo_vehicle: VehicleDefinition, authority: Authority) -> AsyncIterator[SdvServer]:
    leaf = authority.issue("localhost", server=True)
    security = ServerSecurity(
        certificate_chain=leaf.certificate, private_key=leaf.key, client_ca=authority.pem
    )
    server = SdvServer(Broker.from_vehicle(demo_vehicle), port=0, security=security)
    await server.start()
    yield server
    await server.stop(grace=0)


async def _server_info(server: SdvServer, security: ChannelSecurity) -> tuple[str, str]:
    async with VehicleClient(server.target, security=security, timeout=3) as client:
        return await client.server_info()


async def test_mtls_accepts_a_client_certificate_from_its_ca(
    mtls_server: SdvServer, authority: Authority
) -> None:
    client = authority.issue("hmi", server=False)
    security = ChannelSecurity(
        tls=True,
        root_certificates=authority.pem,
        certificate_chain=client.certificate,
        private_key=client.key,
    )
    assert (await _server_info(mtls_server, security))[0] == "sdv"


async def test_mtls_refuses_a_client_certificate_from_another_ca(
    mtls_server: SdvServer, authority: Authority
) -> None:
    impostor = Authority("another CA").issue("hmi", server=False)
    security = ChannelSecurity(
        tls=True,
        root_certificates=authority.pem,
        certificate_chain=impostor.certificate,
        private_key=impostor.key,
    )
    with pytest.raises(ServerUnreachableError):
        await _server_info(mtls_server, security)


async def test_mtls_refuses_a_client_without_certificate(
    mtls_server: SdvServer, authority: Authority
) -> None:
    with pytest.raises(ServerUnreachableError):
        await _server_info(mtls_server, ChannelSecurity(tls=True, root_certificates=authority.pem))


async def test_mtls_refuses_a_plaintext_client(mtls_server: SdvServer) -> None:
    async with grpc.aio.insecure_channel(mtls_server.target) as channel:
        from sdv._proto.kuksa.val.v2 import val_pb2_grpc

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await val_pb2_grpc.VALStub(channel).GetValue(
                val_pb2.GetValueRequest(signal_id=types_pb2.SignalID(path=SPEED)), timeout=3
            )
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_client_refuses_a_server_its_ca_did_not_sign(
    mtls_server: SdvServer, authority: Authority
) -> None:
    other = Authority("another CA")
    client = authority.issue("hmi", server=False)
    security = ChannelSecurity(
        tls=True, root_certificates=other.pem, certificate_chain=client.certificate, private_key=client.key
    )
    with pytest.raises(ServerUnreachableError):
        await _server_info(mtls_server, security)


@pytest.fixture(scope="module")
def secured_serve(
    tmp_path_factory: pytest.TempPathFactory, authority: Authority, tokens: Tokens
) -> Iterator[tuple[int, Path]]:
    """``sdv serve`` with TLS and token checks, as a process; yields its port and the CA file."""
    directory = tmp_path_factory.mktemp("secured")
    cert, key = authority.issue("localhost", server=True).write(directory, "server")
    ca = directory / "ca.crt"
    ca.write_bytes(authority.pem)
    public = directory / "tokens.pub"
    public.write_bytes(tokens.public_pem)
    with serving("--tls-cert", str(cert), "--tls-key", str(key), "--jwt-public-key", str(public)) as (
        port,
        _,
    ):
        yield port, ca


def test_kuksa_client_with_a_token_over_tls(secured_serve: tuple[int, Path], tokens: Tokens) -> None:
    port, ca = secured_serve
    result = kuksa_client_secured(port, tokens.valid("read:Vehicle.Speed actuate:Vehicle.Body.Lights"), ca)
    assert 0 <= result["speed"] <= 300 and result["unit"] == "km/h"
    assert result["actuation"] == "ok"


def test_kuksa_client_with_a_read_only_token_cannot_actuate(
    secured_serve: tuple[int, Path], tokens: Tokens
) -> None:
    port, ca = secured_serve
    result = kuksa_client_secured(port, tokens.valid("read:Vehicle"), ca)
    assert result["unit"] == "km/h"
    assert result["actuation"] == str(grpc.StatusCode.PERMISSION_DENIED.value[0])


def _sdv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sdv.cli.main", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_clients_connect_with_tls_and_a_token(
    secured_serve: tuple[int, Path], tokens: Tokens, tmp_path: Path
) -> None:
    port, ca = secured_serve
    token_file = tmp_path / "token"
    token_file.write_text(tokens.valid("read:Vehicle.Speed") + "\n")
    flags = ["--server", f"127.0.0.1:{port}", "--tls-ca", str(ca), "--tls-server-name", "localhost"]
    done = _sdv("get", SPEED, *flags, "--token-file", str(token_file))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(SPEED) and "km/h" in done.stdout
    refused = _sdv("get", SPEED, *flags)
    assert refused.returncode == 1 and "requires a bearer token" in refused.stderr
    denied = _sdv("set", "Vehicle.Body.Lights.Beam.Low.IsOn", "true", *flags, "--token-file", str(token_file))
    assert denied.returncode == 1 and "app is not allowed to" in denied.stderr
    assert "sdv set reads the signal's datatype first, and the server refused that" in denied.stderr
