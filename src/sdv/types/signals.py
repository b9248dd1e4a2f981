"""A signal's datapoint (value, time, status) and its static metadata, as every layer passes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from sdv.types.datatypes import Value
from sdv.types.status import Status

__all__ = ["NO_VALUE", "Datapoint", "SignalMetadata"]


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
    """Static description of one signal, as the profile or the VSS catalogue declares it.

    Attributes:
        id: stable numeric id (1-based, in profile order, then catalogue order) for id-based APIs.
        path: the VSS path.
        kind: ``sensor``, ``actuator`` or ``attribute``.
        datatype: the VSS datatype name (``uint8``, ``string[]``).
        unit: the VSS unit, if any.
        min: smallest accepted value, if bounded.
        max: largest accepted value, if bounded.
        allowed: the accepted values, if restricted.
        description: what the signal means.
        comment: the catalogue's comment, if any.
        deprecation: the catalogue's deprecation note, if any.
        default: the catalogue's default value, served as the current value from the start, if any.
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
    comment: str | None = None
    deprecation: str | None = None
    default: Value | None = None
