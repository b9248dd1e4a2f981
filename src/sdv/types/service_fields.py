"""The fields of the typed services and what each expects of the profile signal that fills it.

A vehicle profile maps service fields onto its signals (``services: {cockpit: {speed: Vehicle.Speed}}``);
:mod:`sdv.hal.vehicle` checks that mapping against the tables here, so that a signal of the wrong kind is a located
profile problem at load time rather than a wrong value at run time.

Invariants:

* The field names are the proto field names of ``sdv.cockpit.v1.ClusterState`` and
  ``sdv.adas.v1.VehicleDynamics``; the servicers fill the message field of the same name.
* A field's :class:`Family` is checked against the mapped signal's VSS datatype; its unit, when the signal
  declares one, must be the field's unit (the services never convert units).
* A field marked ``command`` is written by a command RPC and must map to an actuator.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from sdv.types.datatypes import DATATYPES

__all__ = ["ADAS_FIELDS", "COCKPIT_FIELDS", "SERVICE_FIELDS", "Family", "ServiceField", "family_of"]


class Family(enum.Enum):
    """The kind of value a field holds, which the mapped signal's VSS datatype must provide."""

    NUMBER = "number"
    """Any integer or floating-point datatype."""
    BOOLEAN = "boolean"
    STRING = "string"
    """``string`` (enumerations in VSS are strings with allowed values)."""


_FAMILIES: Mapping[str, Family] = {
    "boolean": Family.BOOLEAN,
    "string": Family.STRING,
    **{datatype: Family.NUMBER for datatype in DATATYPES if datatype not in ("boolean", "string")},
}


def family_of(datatype: str) -> Family:
    """The family of a VSS datatype name.

    Raises:
        ValueError: for a name that is not a VSS datatype.
    """
    try:
        return _FAMILIES[datatype]
    except KeyError:
        raise ValueError(f"unknown VSS datatype {datatype!r}") from None


@dataclass(frozen=True)
class ServiceField:
    """One field of a typed service.

    Attributes:
        name: the proto field name, also the key in the profile's ``services`` mapping.
        family: the kind of value the mapped signal must have.
        unit: the VSS unit the field is in, if any.
        description: what the field means.
        command: a command RPC writes it, so it must map to an actuator.
    """

    name: str
    family: Family
    unit: str | None
    description: str
    command: bool = False


def _table(*fields: ServiceField) -> Mapping[str, ServiceField]:
    return {field.name: field for field in fields}


_NUMBER, _BOOLEAN = Family.NUMBER, Family.BOOLEAN

COCKPIT_FIELDS: Mapping[str, ServiceField] = _table(
    ServiceField("speed", _NUMBER, "km/h", "vehicle speed"),
    ServiceField("gear", _NUMBER, None, "selected gear: 0 neutral, -1 reverse, 126 park, 127 drive (VSS)"),
    ServiceField("state_of_charge", _NUMBER, "percent", "battery state of charge shown to the driver"),
    ServiceField("range", _NUMBER, "m", "remaining range"),
    ServiceField("turn_left", _BOOLEAN, None, "left direction indicator signalling"),
    ServiceField("turn_right", _BOOLEAN, None, "right direction indicator signalling"),
    ServiceField("door_front_left_open", _BOOLEAN, None, "front left door open"),
    ServiceField("door_front_right_open", _BOOLEAN, None, "front right door open"),
    ServiceField("door_rear_left_open", _BOOLEAN, None, "rear left door open"),
    ServiceField("door_rear_right_open", _BOOLEAN, None, "rear right door open"),
    ServiceField("trunk_open", _BOOLEAN, None, "trunk open"),
    ServiceField("low_beam", _BOOLEAN, None, "low beam on; SetLowBeam requests it", command=True),
    ServiceField("high_beam", _BOOLEAN, None, "high beam on"),
    ServiceField("outside_temperature", _NUMBER, "celsius", "air temperature outside"),
    ServiceField("cabin_temperature", _NUMBER, "celsius", "air temperature in the cabin"),
    ServiceField(
        "target_cabin_temperature",
        _NUMBER,
        "celsius",
        "requested cabin temperature; SetCabinTemperature requests it",
        command=True,
    ),
)
"""Fields of ``sdv.cockpit.v1.ClusterState``."""

ADAS_FIELDS: Mapping[str, ServiceField] = _table(
    ServiceField("speed", _NUMBER, "km/h", "vehicle speed"),
    ServiceField("wheel_speed_front_left", _NUMBER, "km/h", "front left wheel speed"),
    ServiceField("wheel_speed_front_right", _NUMBER, "km/h", "front right wheel speed"),
    ServiceField("wheel_speed_rear_left", _NUMBER, "km/h", "rear left wheel speed"),
    ServiceField("wheel_speed_rear_right", _NUMBER, "km/h", "rear right wheel speed"),
    ServiceField("yaw_rate", _NUMBER, "degrees/s", "rotation rate about the vertical axis, positive left"),
    ServiceField("lateral_acceleration", _NUMBER, "m/s^2", "acceleration along Y"),
    ServiceField("longitudinal_acceleration", _NUMBER, "m/s^2", "acceleration along X"),
    ServiceField("steering_angle", _NUMBER, "degrees", "steering wheel angle, positive left"),
    ServiceField("accelerator_pedal", _NUMBER, "percent", "accelerator pedal position"),
    ServiceField("brake_pressed", _BOOLEAN, None, "the driver presses the brake pedal (value 1, else 0)"),
    ServiceField("brake_pressure", _NUMBER, "bar", "brake line pressure"),
    ServiceField("lead_vehicle_distance", _NUMBER, "m", "distance to the vehicle ahead"),
    ServiceField(
        "lead_vehicle_relative_speed", _NUMBER, "m/s", "speed of the vehicle ahead relative to this one"
    ),
)
"""Fields of ``sdv.adas.v1.VehicleDynamics``; every one is a ``Measurement`` (a boolean as 1 or 0)."""

SERVICE_FIELDS: Mapping[str, Mapping[str, ServiceField]] = {"cockpit": COCKPIT_FIELDS, "adas": ADAS_FIELDS}
"""Service name (the key under ``services`` in a profile) → its fields."""
