"""The second layer of authorization: the ECU owning an actuator checks the app's token itself, with its own key
and the same access decision as its gRPC API, before its HAL writes a frame.

Two ECUs in this process (real brokers, HALs, zenoh sessions; ECU c's request bus is a python-can virtual bus
this test observes); the app calls ECU a's gRPC server with a bearer token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import can
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from sdv.api.security import ServerSecurity
from sdv.api.server import SdvServer
from sdv.api.tokens import TokenVerifier, create_token, generate_key
from sdv.broker import HalBridge
from sdv.client import VehicleClient
from sdv.client.channel import ChannelSecurity
from sdv.errors import AccessDenied, AuthenticationError, NoProviderError
from sdv.federation import Federation
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import load_vehicle
from tests.federation.network import free_port
from tests.federation.vehicle import LIGHT_REQUEST_ID, LOW_BEAM, write_vehicle
from tests.waiting import wait_until_async

FRAME_WAIT_S = 10


@dataclass
class Pair:
    a: Federation
    c: Federation
    target: str
    bus: can.BusABC
    issuer: PrivateKeyTypes

    def client(self, scope: str) -> VehicleClient:
        """A client of ECU a with a token granting ``scope``, signed by the vehicle's issuer."""
        token = create_token(self.issuer, scope, subject="lights-app")
        return VehicleClient(self.target, security=ChannelSecurity(token=token))


def _profile_with_virtual_requests(profile: Path, channel: str) -> Path:
    data = yaml.safe_load(profile.read_text())
    for bus in data["buses"]:
        if bus["name"] == "requests":
            bus.clear()
            bus.update(name="requests", interface="virtual", channel=channel, dbc=data["buses"][0]["dbc"])
    profile.write_text(yaml.safe_dump(data, sort_keys=False))
    return profile


async def _pair(tmp_path: Path, same_key: bool) -> AsyncIterator[Pair]:
    endpoints = {ecu: f"tcp/127.0.0.1:{free_port()}" for ecu in ("a", "c")}
    endpoints["b"] = f"tcp/127.0.0.1:{free_port()}"
    files = write_vehicle(tmp_path, endpoints, frame_port=1)
    channel = f"federation-{tmp_path.name}"
    _profile_with_virtual_requests(files["c"].profile, channel)
    issuer = generate_key()
    other = issuer if same_key else generate_key()
    keys = {"a": issuer, "c": other}
    bridges, federations = {}, {}
    for ecu in ("a", "c"):
        vehicle = load_vehicle(files[ecu].profile)
        assert vehicle.config.federation is not None
        config = vehicle.config.federation.model_copy(
            update={"peers": [endpoints["a" if ecu == "c" else "c"]]}
        )
        bridges[ecu] = HalBridge(Hal(vehicle))
        bridges[ecu].start()
        federations[ecu] = Federation(
            bridges[ecu].broker, vehicle, config, verifier=TokenVerifier(keys[ecu].public_key())
        )
    security = ServerSecurity(verifier=TokenVerifier(issuer.public_key()))
    bus = can.Bus(interface="virtual", channel=channel)
    try:
        async with SdvServer(bridges["a"].broker, port=0, security=security) as server:
            for federation in federations.values():
                await federation.start()
            try:
                await wait_until_async(
                    _alive(federations["a"], "c"), what="ECU a mirroring ECU c", timeout_s=60
                )
                yield Pair(federations["a"], federations["c"], server.target, bus, issuer)
            finally:
                for federation in federations.values():
                    await federation.stop()
    finally:
        bus.shutdown()
        for bridge in bridges.values():
            bridge.stop()


def _alive(federation: Federation, name: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        ecu = federation.remote_ecus.get(name)
        return ecu is not None and ecu.alive

    return check


def _light_requests(bus: can.BusABC) -> list[int]:
    frames = []
    while (frame := bus.recv(0)) is not None:
        if frame.arbitration_id == LIGHT_REQUEST_ID:
            frames.append(frame.data[0] & 1)
    return frames


@pytest.fixture
async def shared_key(tmp_path: Path) -> AsyncIterator[Pair]:
    async for pair in _pair(tmp_path, same_key=True):
        yield pair


@pytest.fixture
async def foreign_key(tmp_path: Path) -> AsyncIterator[Pair]:
    async for pair in _pair(tmp_path, same_key=False):
        yield pair


async def test_the_owner_carries_out_a_request_its_own_check_of_the_token_allows(shared_key: Pair) -> None:
    async with shared_key.client("actuate:Vehicle.Body.Lights") as client:
        await client.actuate(LOW_BEAM, True)
    frame = shared_key.bus.recv(FRAME_WAIT_S)
    assert frame is not None and frame.arbitration_id == LIGHT_REQUEST_ID and frame.data[0] & 1 == 1


async def test_a_token_the_owner_cannot_verify_sends_no_frame(foreign_key: Pair) -> None:
    # ECU a trusts the issuer; ECU c trusts another key: c refuses although a let the call through
    async with foreign_key.client("actuate:Vehicle.Body.Lights") as client:
        with pytest.raises(AuthenticationError, match="ECU c: the token's signature does not verify"):
            await client.actuate(LOW_BEAM, True)
    assert _light_requests(foreign_key.bus) == []


async def test_a_token_without_the_right_is_refused_before_it_leaves_the_ecu(shared_key: Pair) -> None:
    async with shared_key.client("read") as client:
        with pytest.raises(AccessDenied):
            await client.actuate(LOW_BEAM, True)
    assert _light_requests(shared_key.bus) == []


async def test_an_owner_that_left_is_unreachable_at_once(shared_key: Pair) -> None:
    await shared_key.c.stop()
    await wait_until_async(_gone(shared_key.a, "c"), what="ECU a noticing that ECU c left", timeout_s=60)
    async with shared_key.client("actuate:Vehicle.Body.Lights") as client:
        # the gRPC code is UNAVAILABLE, as for any actuator without provider; the message tells which
        with pytest.raises(NoProviderError, match="its owner, ECU c, is unreachable"):
            await client.actuate(LOW_BEAM, True)
        assert (await client.get([LOW_BEAM]))[LOW_BEAM].value is None


def _gone(federation: Federation, name: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        ecu = federation.remote_ecus.get(name)
        return ecu is not None and not ecu.alive

    return check
