"""The second layer of authorization: the ECU owning an actuator checks the app's token itself, with its own key
and the same access decision as its gRPC API, before its HAL writes a frame.

Two ECUs in this process (real brokers, HALs, zenoh sessions; ECU c's request bus is a python-can virtual bus
this test observes); the app calls ECU a's gRPC server with a bearer token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdv.errors import AccessDenied, AuthenticationError, NoProviderError
from tests.federation.in_process import Pair, federated_pair, gone, light_requests
from tests.federation.vehicle import LIGHT_REQUEST_ID, LOW_BEAM
from tests.waiting import wait_until_async

FRAME_WAIT_S = 10


@pytest.fixture
async def shared_key(tmp_path: Path) -> AsyncIterator[Pair]:
    async with federated_pair(tmp_path, same_key=True) as pair:
        yield pair


@pytest.fixture
async def foreign_key(tmp_path: Path) -> AsyncIterator[Pair]:
    async with federated_pair(tmp_path, same_key=False) as pair:
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
    assert light_requests(foreign_key.bus) == []


async def test_a_token_without_the_right_is_refused_before_it_leaves_the_ecu(shared_key: Pair) -> None:
    async with shared_key.client("read") as client:
        with pytest.raises(AccessDenied):
            await client.actuate(LOW_BEAM, True)
    assert light_requests(shared_key.bus) == []


async def test_an_owner_that_left_is_unreachable_at_once(shared_key: Pair) -> None:
    await shared_key.c.stop()
    await wait_until_async(gone(shared_key.a, "c"), what="ECU a noticing that ECU c left", timeout_s=60)
    async with shared_key.client("actuate:Vehicle.Body.Lights") as client:
        # the gRPC code is UNAVAILABLE, as for any actuator without provider; the message tells which
        with pytest.raises(NoProviderError, match="its owner, ECU c, is unreachable"):
            await client.actuate(LOW_BEAM, True)
        assert (await client.get([LOW_BEAM]))[LOW_BEAM].value is None
