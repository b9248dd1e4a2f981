"""Addresses as users write them, for the SDK and the CLI alike: a default port, grpc:// and grpcs://."""

from __future__ import annotations

import pytest

import sdv
from sdv.client import ChannelSecurity, VehicleClient
from sdv.client.address import AddressError, parse_address
from sdv.ota.client import OtaClient
from tests.client.serving import ServerThread


@pytest.mark.parametrize(
    ("text", "target", "tls"),
    [
        ("127.0.0.1", "127.0.0.1:55555", None),
        ("ecu:1234", "ecu:1234", None),
        ("grpc://ecu", "ecu:55555", False),
        ("grpcs://ecu:443/", "ecu:443", True),
        ("GRPCS://ecu", "ecu:55555", True),
        ("::1", "[::1]:55555", None),
        ("[::1]:4000", "[::1]:4000", None),
        ("grpc://[fe80::1]", "[fe80::1]:55555", False),
    ],
)
def test_accepted_forms(text: str, target: str, tls: bool | None) -> None:
    parsed = parse_address(text, 55555)
    assert (parsed.target, parsed.tls) == (target, tls)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("http://ecu", "scheme 'http' is not supported"),
        ("ecu:99999", "port '99999' is not a TCP port"),
        ("ecu:55555/v2", "expected HOST, HOST:PORT"),
        ("", "expected HOST, HOST:PORT"),
        ("[::1", "expected HOST, HOST:PORT"),
        (":55555", "no host"),
    ],
)
def test_refused_forms_name_the_accepted_ones(text: str, message: str) -> None:
    with pytest.raises(AddressError, match=message):
        parse_address(text, 55555)


def test_clients_take_the_default_port_of_their_service() -> None:
    assert VehicleClient("127.0.0.1").target == "127.0.0.1:55555"
    assert VehicleClient("unix:/run/sdv.sock").target == "unix:/run/sdv.sock"  # gRPC's own forms pass through
    client = VehicleClient("grpcs://ecu")
    assert client.security.tls
    with OtaClient("127.0.0.1") as agent:
        assert agent.target == "127.0.0.1:55556"
    with pytest.raises(AddressError, match="grpc:// is plaintext"):
        VehicleClient("grpc://ecu", security=ChannelSecurity(tls=True))


async def test_the_sdk_connects_with_a_grpc_url(server: ServerThread) -> None:
    async with sdv.connect(f"grpc://{server.target}") as vehicle:
        speed = await vehicle.get("Vehicle.Speed")
    assert speed.unit == "km/h"
