"""The cloud may request only the actuators ``federation.gateway.actuators`` lists, with an app's token that the
gateway and the actuator's owner both check.

ECU a (the gateway, trusting the vehicle's issuer) and ECU c (owning the low beam) run in this process; the cloud
is a zenoh node listening where a's cloud link connects to, and queries the ``act`` keys itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import zenoh

from sdv.errors import AccessDenied, AuthenticationError, ConfigError, SdvError
from sdv.federation.codec import decode_reply, encode_request
from tests.federation.in_process import Pair, federated_pair, light_requests
from tests.federation.network import cloud_node, free_port
from tests.federation.vehicle import LIGHT_REQUEST_ID, LOW_BEAM, VEHICLE
from tests.waiting import DEADLINE_S

ACT_KEY = f"sdv/{VEHICLE}/act/{LOW_BEAM.replace('.', '/')}"
REPLY_TIMEOUT_S = 10


@contextlib.asynccontextmanager
async def vehicle_with_cloud(
    tmp_path: Path, gateway: dict[str, Any], same_key: bool | None = True
) -> AsyncIterator[tuple[Pair, zenoh.Session]]:
    port = free_port()
    with cloud_node("127.0.0.1", port) as cloud:
        link = {"endpoint": f"tcp/127.0.0.1:{port}", **gateway}
        async with federated_pair(tmp_path, same_key=same_key, gateway=link) as pair:
            yield pair, cloud


async def request(cloud: zenoh.Session, value: object, token: str | None) -> list[SdvError | None]:
    """The cloud's request for the low beam: one entry per reply, None for success, else the owner's error."""

    def ask() -> list[SdvError | None]:
        payload = encode_request(value, token)  # type: ignore[arg-type]
        replies = cloud.get(ACT_KEY, payload=payload, timeout=REPLY_TIMEOUT_S)
        return [
            None if reply.ok is not None else decode_reply(reply.err.payload.to_bytes(), "a")
            for reply in replies
        ]

    return await asyncio.to_thread(ask)


async def answered(cloud: zenoh.Session, value: object, token: str | None) -> SdvError | None:
    """The one reply to a request, once the gateway's link and queryable are up (they come up in the
    background: a query before has no replier)."""
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while not (replies := await request(cloud, value, token)):
        assert asyncio.get_running_loop().time() < deadline, (
            f"no reply from the gateway within {DEADLINE_S:g} s"
        )
    assert len(replies) == 1, replies
    return replies[0]


@pytest.fixture
async def allowed(tmp_path: Path) -> AsyncIterator[tuple[Pair, zenoh.Session]]:
    async with vehicle_with_cloud(tmp_path, {"actuators": ["Vehicle.Body.Lights"]}) as joined:
        yield joined


async def test_a_listed_actuator_is_carried_out_for_a_token_with_the_right(
    allowed: tuple[Pair, zenoh.Session],
) -> None:
    pair, cloud = allowed
    assert await answered(cloud, True, pair.token("actuate:Vehicle.Body.Lights.Beam.Low")) is None
    frame = pair.bus.recv(REPLY_TIMEOUT_S)
    assert frame is not None and frame.arbitration_id == LIGHT_REQUEST_ID and frame.data[0] & 1 == 1


async def test_a_token_without_the_right_or_no_token_sends_no_frame(
    allowed: tuple[Pair, zenoh.Session],
) -> None:
    pair, cloud = allowed
    refused = await answered(cloud, True, pair.token("read"))
    assert isinstance(refused, AccessDenied), refused
    missing = await answered(cloud, True, None)
    assert isinstance(missing, AuthenticationError) and "must carry an app's token" in str(missing)
    assert light_requests(pair.bus) == []


async def test_the_owner_checks_the_token_again(tmp_path: Path) -> None:
    # the gateway trusts the issuer, ECU c another key: c refuses what a let through
    async with vehicle_with_cloud(tmp_path, {"actuators": ["**"]}, same_key=False) as (pair, cloud):
        refused = await answered(cloud, True, pair.token("actuate"))
        assert isinstance(refused, AuthenticationError) and "ECU c" in str(refused), refused
        assert light_requests(pair.bus) == []


async def test_by_default_the_cloud_may_request_nothing(tmp_path: Path) -> None:
    async with vehicle_with_cloud(tmp_path, {}) as (pair, cloud):
        # once telemetry arrives the link is up: the request finds no queryable
        telemetry = threading.Event()
        cloud.declare_subscriber(f"sdv/{VEHICLE}/sig/**", lambda sample: telemetry.set())
        assert await asyncio.to_thread(telemetry.wait, DEADLINE_S), "no telemetry from the gateway"
        assert await request(cloud, True, pair.token("actuate")) == []
        assert light_requests(pair.bus) == []


async def test_cloud_actuation_on_a_gateway_that_checks_no_tokens_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"federation\.gateway\.actuators.*token checks"):
        async with vehicle_with_cloud(tmp_path, {"actuators": [LOW_BEAM]}, same_key=None):
            pass
