"""The client's conversions: what the server encodes, the client reads back as the broker's own types."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdv.broker import metadata_from_vehicle
from sdv.client.convert import datapoint_from_v2, metadata_from_v2, shortest_float32
from sdv.hal.vehicle import VehicleDefinition
from sdv.types.signals import Datapoint
from sdv.types.status import Status
from sdv.wire import datapoint_to_v2, metadata_to_v2


def test_every_demo_signals_metadata_round_trips(demo_vehicle: VehicleDefinition) -> None:
    for meta in metadata_from_vehicle(demo_vehicle):
        assert metadata_from_v2(metadata_to_v2(meta)) == meta


@pytest.mark.parametrize(
    ("datatype", "value"),
    [
        ("float", 87.3),
        ("double", 0.1 + 0.2),
        ("boolean", True),
        ("int8", -3),
        ("uint64", 2**64 - 1),
        ("string", "x"),
    ],
)
def test_valid_datapoints_round_trip(datatype: str, value: bool | int | float | str) -> None:
    datapoint = Datapoint(value, 1767225600.25, Status.VALID)
    received = datapoint_from_v2(datapoint_to_v2(datatype, datapoint))
    assert (received.value, received.status) == (value, Status.VALID) and type(received.value) is type(value)
    assert received.timestamp == pytest.approx(datapoint.timestamp, abs=1e-6)


@pytest.mark.parametrize("status", [Status.STALE, Status.E2E_FAILED, Status.NOT_AVAILABLE])
def test_a_datapoint_the_server_cannot_vouch_for_arrives_without_value(status: Status) -> None:
    received = datapoint_from_v2(datapoint_to_v2("float", Datapoint(12.5, 1767225600.5, status)))
    assert (received.value, received.status) == (None, Status.NOT_AVAILABLE)
    assert received.timestamp == pytest.approx(1767225600.5, abs=1e-6)


@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_shortest_float32_is_the_same_32_bit_float(number: float) -> None:
    shortest = shortest_float32(number)
    assert struct.pack("<f", shortest) == struct.pack("<f", number)
    assert len(repr(shortest)) <= len(repr(number))
