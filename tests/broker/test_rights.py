"""Rights are passed with every broker operation made on someone's behalf; none given means none granted."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sdv.api.calls import caller
from sdv.broker import Broker, Owner, OwnerKind
from sdv.broker.access import NO_RIGHTS, UNRESTRICTED, Access
from sdv.errors import AccessDenied
from sdv.hal.vehicle import VehicleDefinition

_SPEED = "Vehicle.Speed"
_LIGHT = "Vehicle.Body.Lights.Beam.Low.IsOn"

# Every public operation made on behalf of a caller, called with the given rights.
_OPERATIONS: dict[str, Callable[[Broker, Access], Any]] = {
    "metadata": lambda broker, access: broker.metadata(_SPEED, access=access),
    "metadata_by_id": lambda broker, access: broker.metadata_by_id(1, access=access),
    "list_metadata": lambda broker, access: broker.list_metadata(access=access),
    "get": lambda broker, access: broker.get(_SPEED, access=access),
    "target": lambda broker, access: broker.target(_LIGHT, access=access),
    "publish_value": lambda broker, access: broker.publish_value(_SPEED, 10.0, access=access),
    "publish_not_available": lambda broker, access: broker.publish_not_available(_SPEED, access=access),
    "check_publisher": lambda broker, access: broker.check_publisher(_SPEED, access=access),
    "claim_signals": lambda broker, access: broker.claim_signals(
        [_SPEED], Owner(OwnerKind.CLIENT, "test"), access=access
    ),
    "claim_actuators": lambda broker, access: broker.claim_actuators(
        [_LIGHT], Owner(OwnerKind.CLIENT, "test"), None, access=access
    ),
    "subscribe": lambda broker, access: broker.subscribe([_SPEED], access=access),
    "validate_actuation": lambda broker, access: broker.validate_actuation(_LIGHT, True, access=access),
    "actuate": lambda broker, access: broker.actuate([(_LIGHT, True)], access=access),
}

# Public operations that act for no caller: the HAL's own publication, ownership bookkeeping, statistics.
_NOT_ON_BEHALF = frozenset({
    "publish", "release", "statistics", "attach_statistics", "subscription_count",
    "check_request_size", "actuation_provider", "owner_of", "from_vehicle", "from_catalogue",
})  # fmt: skip


@pytest.fixture
def broker(demo_vehicle: VehicleDefinition) -> Broker:
    return Broker.from_vehicle(demo_vehicle)


async def _call(operation: Callable[[Broker, Access], Any], broker: Broker, access: Access) -> Any:
    result = operation(broker, access)
    if isinstance(result, Awaitable):
        return await result
    return result


def test_every_public_operation_takes_the_rights_as_a_required_argument() -> None:
    public = {name for name, _ in inspect.getmembers(Broker) if not name.startswith("_")}
    assert public == set(_OPERATIONS) | _NOT_ON_BEHALF, "a new broker operation: does it act for a caller?"
    for name in _OPERATIONS:
        access = inspect.signature(getattr(Broker, name)).parameters["access"]
        assert access.kind is inspect.Parameter.KEYWORD_ONLY and access.default is inspect.Parameter.empty


@pytest.mark.parametrize("name", sorted(_OPERATIONS))
async def test_an_operation_without_rights_is_refused(broker: Broker, name: str) -> None:
    with pytest.raises(AccessDenied):
        await _call(_OPERATIONS[name], broker, NO_RIGHTS)


async def test_outside_a_guarded_call_the_caller_has_no_rights(broker: Broker) -> None:
    assert caller() is NO_RIGHTS
    with pytest.raises(AccessDenied):
        broker.get(_SPEED, access=caller())
    assert broker.get(_SPEED, access=UNRESTRICTED).status.name == "NOT_AVAILABLE"  # the server's own parts
