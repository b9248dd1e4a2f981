"""What the broker knows of each signal: its metadata and its latest datapoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from sdv.hal.datatypes import Value
from sdv.hal.processor import Status
from sdv.hal.vehicle import VehicleModel

__all__ = ["Datapoint", "SignalMetadata", "metadata_from_vehicle"]


class Datapoint(NamedTuple):
    """A signal's value with the time it was measured and whether it can be trusted.

    ``value`` is the last value received; when ``status`` is not ``VALID`` it is the last valid value, kept so
    that apps can show it greyed out, and APIs that have no status field serve "no value" instead.
    """

    value: Value | None
    timestamp: float | None
    status: Status


NO_VALUE = Datapoint(None, None, Status.NOT_AVAILABLE)


@dataclass(frozen=True)
class SignalMetadata:
    """Static description of one signal, as the profile declares it.

    Attributes:
        id: stable numeric id (1-based, in profile order) for id-based APIs.
        path: the VSS path.
        kind: ``sensor``, ``actuator`` or ``attribute``.
        datatype: the VSS datatype name.
        unit: the VSS unit, if any.
        min: smallest accepted value, if bounded.
        max: largest accepted value, if bounded.
        allowed: the accepted values, if restricted.
        description: what the signal means.
    """

    id: int
    path: str
    kind: str
    datatype: str
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    allowed: tuple[Value, ...] | None = None
    description: str = ""


def metadata_from_vehicle(vehicle: VehicleModel) -> list[SignalMetadata]:
    """Metadata of every signal of a vehicle profile, with ids in profile order."""
    return [
        SignalMetadata(
            id=index,
            path=signal.path,
            kind=signal.kind,
            datatype=signal.datatype,
            unit=signal.unit,
            min=signal.min,
            max=signal.max,
            allowed=tuple(signal.allowed) if signal.allowed is not None else None,
            description=signal.description,
        )
        for index, signal in enumerate(vehicle.signals.values(), start=1)
    ]
