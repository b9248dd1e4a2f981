"""The typed services' conversions: validity, availability and value types, without a server."""

from __future__ import annotations

import math

import pytest

from sdv._proto.sdv.adas.v1 import adas_pb2 as a
from sdv.api.convert_services import (
    VALIDITY,
    ClusterStateBuilder,
    DynamicsBuilder,
    measurement,
    min_interval_ms,
)
from sdv.services import ADAS_FIELDS
from sdv.types.signals import Datapoint
from sdv.types.status import Status

NOW = 1_767_225_600.25


@pytest.mark.parametrize(
    ("status", "validity"),
    [
        (Status.VALID, a.VALID),
        (Status.STALE, a.STALE),
        (Status.E2E_FAILED, a.E2E_FAILED),
        (Status.NOT_AVAILABLE, a.NOT_AVAILABLE),
    ],
)
def test_every_status_has_its_validity(status: Status, validity: int) -> None:
    result = measurement(Datapoint(12.5, NOW, status))
    assert result.validity == validity
    assert result.value == 12.5
    assert result.timestamp.seconds == 1_767_225_600
    assert result.timestamp.nanos == 250_000_000


def test_the_validity_table_covers_every_status() -> None:
    assert set(VALIDITY) == set(Status)
    assert a.VALIDITY_UNSPECIFIED not in VALIDITY.values()


def test_a_failed_e2e_check_reaches_the_dynamics_message() -> None:
    builder = DynamicsBuilder(
        {"speed": "Vehicle.Speed", "brake_pressed": "Vehicle.SDV.Chassis.Brake.IsDriverBraking"}
    )
    dynamics = builder.build(
        {
            "Vehicle.Speed": Datapoint(50.0, NOW, Status.E2E_FAILED),
            "Vehicle.SDV.Chassis.Brake.IsDriverBraking": Datapoint(True, NOW, Status.VALID),
        }
    )
    assert dynamics.speed.validity == a.E2E_FAILED
    assert dynamics.brake_pressed.validity == a.VALID
    assert dynamics.brake_pressed.value == 1.0


def test_never_received_and_unmapped_fields_are_not_available() -> None:
    builder = DynamicsBuilder({"speed": "Vehicle.Speed"})
    dynamics = builder.build({"Vehicle.Speed": Datapoint(None, None, Status.NOT_AVAILABLE)})
    for name in ADAS_FIELDS:
        field = getattr(dynamics, name)
        assert field.validity == a.NOT_AVAILABLE, name
        assert math.isnan(field.value), name
        assert not field.HasField("timestamp"), name


@pytest.mark.parametrize("status", [Status.STALE, Status.E2E_FAILED, Status.NOT_AVAILABLE])
def test_a_cluster_field_without_a_trustworthy_value_is_absent(status: Status) -> None:
    builder = ClusterStateBuilder(
        {"speed": "Vehicle.Speed", "gear": "Vehicle.Powertrain.Transmission.SelectedGear"}
    )
    state = builder.build(
        {
            "Vehicle.Speed": Datapoint(50.0, NOW, status),
            "Vehicle.Powertrain.Transmission.SelectedGear": Datapoint(127, NOW, Status.VALID),
        },
        now=NOW,
    )
    assert not state.HasField("speed")
    assert state.HasField("gear")
    assert state.gear == 127
    assert not state.HasField("low_beam")  # not mapped


def test_builders_refuse_unknown_fields() -> None:
    with pytest.raises(ValueError, match="sped"):
        ClusterStateBuilder({"sped": "Vehicle.Speed"})
    with pytest.raises(ValueError, match="sped"):
        DynamicsBuilder({"sped": "Vehicle.Speed"})


@pytest.mark.parametrize(("rate", "interval"), [(0, 0.0), (1, 1000.0), (4, 250.0), (1000, 1.0)])
def test_max_rate_hz_as_a_subscription_interval(rate: int, interval: float) -> None:
    assert min_interval_ms(rate) == interval
