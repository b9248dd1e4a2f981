"""Two ECUs of the test vehicle in the test's own process: real brokers, HALs and zenoh sessions on loopback.

ECU a serves gRPC (with a token check when the pair has keys) and may be the cloud gateway; ECU c owns the low
beam actuator, whose requests go out on a python-can virtual bus the test reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import can
import yaml
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from sdv.api.security import ServerSecurity
from sdv.api.server import SdvServer
from sdv.api.tokens import TokenVerifier, create_token, generate_key
from sdv.broker import HalBridge
from sdv.client import VehicleClient
from sdv.client.channel import ChannelSecurity
from sdv.federation import Federation
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import load_vehicle
from tests.federation.network import free_port
from tests.federation.vehicle import LIGHT_REQUEST_ID, write_vehicle
from tests.waiting import wait_until_async

__all__ = ["Pair", "alive", "federated_pair", "gone", "light_requests"]


@dataclass
class Pair:
    a: Federation
    c: Federation
    target: str
    """ECU a's gRPC server."""
    bus: can.BusABC
    """ECU c's request bus."""
    issuer: PrivateKeyTypes | None

    def client(self, scope: str) -> VehicleClient:
        """A client of ECU a with a token granting ``scope``, signed by the vehicle's issuer."""
        assert self.issuer is not None
        token = create_token(self.issuer, scope, subject="lights-app")
        return VehicleClient(self.target, security=ChannelSecurity(token=token))

    def token(self, scope: str, subject: str = "fleet-app") -> str:
        """A token granting ``scope``, signed by the vehicle's issuer."""
        assert self.issuer is not None
        return create_token(self.issuer, scope, subject=subject)


def _profile_with_virtual_requests(profile: Path, channel: str) -> Path:
    data = yaml.safe_load(profile.read_text())
    for bus in data["buses"]:
        if bus["name"] == "requests":
            bus.clear()
            bus.update(name="requests", interface="virtual", channel=channel, dbc=data["buses"][0]["dbc"])
    profile.write_text(yaml.safe_dump(data, sort_keys=False))
    return profile


@contextlib.asynccontextmanager
async def federated_pair(
    tmp_path: Path, *, same_key: bool | None = None, gateway: dict[str, Any] | None = None
) -> AsyncIterator[Pair]:
    """ECU a and ECU c, started and joined.

    Args:
        same_key: None: no token checks anywhere; True: both ECUs trust the issuer; False: only a does.
        gateway: ECU a's ``federation.gateway``.
    """
    endpoints = {ecu: f"tcp/127.0.0.1:{free_port()}" for ecu in ("a", "b", "c")}
    files = write_vehicle(tmp_path, endpoints, frame_port=1, gateway=gateway)
    channel = f"federation-{tmp_path.name}"
    _profile_with_virtual_requests(files["c"].profile, channel)
    issuer = generate_key() if same_key is not None else None
    keys = {"a": issuer, "c": issuer if same_key else generate_key()} if issuer is not None else {}
    bridges, federations = {}, {}
    for ecu in ("a", "c"):
        vehicle = load_vehicle(files[ecu].profile)
        assert vehicle.config.federation is not None
        config = vehicle.config.federation.model_copy(
            update={"peers": [endpoints["a" if ecu == "c" else "c"]]}
        )
        bridges[ecu] = HalBridge(Hal(vehicle))
        bridges[ecu].start()
        key = keys.get(ecu)
        verifier = TokenVerifier(key.public_key()) if key is not None else None
        federations[ecu] = Federation(bridges[ecu].broker, vehicle, config, verifier=verifier)
    security = ServerSecurity(verifier=TokenVerifier(issuer.public_key())) if issuer is not None else None
    bus = can.Bus(interface="virtual", channel=channel)
    try:
        async with SdvServer(bridges["a"].broker, port=0, security=security) as server:
            for federation in federations.values():
                await federation.start()
            try:
                await wait_until_async(
                    alive(federations["a"], "c"), what="ECU a mirroring ECU c", timeout_s=60
                )
                yield Pair(federations["a"], federations["c"], server.target, bus, issuer)
            finally:
                for federation in federations.values():
                    await federation.stop()
    finally:
        bus.shutdown()
        for bridge in bridges.values():
            bridge.stop()


def alive(federation: Federation, name: str) -> Callable[[], Awaitable[bool]]:
    """A check: ``federation`` mirrors ECU ``name``."""

    async def check() -> bool:
        ecu = federation.remote_ecus.get(name)
        return ecu is not None and ecu.alive

    return check


def gone(federation: Federation, name: str) -> Callable[[], Awaitable[bool]]:
    """A check: ``federation`` saw ECU ``name`` and then saw it go."""

    async def check() -> bool:
        ecu = federation.remote_ecus.get(name)
        return ecu is not None and not ecu.alive

    return check


def light_requests(bus: can.BusABC) -> list[int]:
    """The LowBeamRequest bit of every light request frame on ``bus`` so far."""
    frames = []
    while (frame := bus.recv(0)) is not None:
        if frame.arbitration_id == LIGHT_REQUEST_ID:
            frames.append(frame.data[0] & 1)
    return frames
