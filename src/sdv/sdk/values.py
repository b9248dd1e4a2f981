"""``SignalValue``: one signal's value as an app sees it, typed and validated.

Invariants:

* ``value`` is ``None`` exactly when the server cannot vouch for the signal now (never received, stale, failed
  its end-to-end check): ``kuksa.val.v2`` sends no value then, and ``status`` is ``NOT_AVAILABLE``.
* ``timestamp`` is timezone-aware UTC, the time the value was measured (the CAN frame's time for the HAL).
* ``value``'s Python type follows ``datatype``: ``bool`` for ``boolean``, ``int`` for the integer types,
  ``float`` for ``float``/``double``, ``str`` for ``string``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from sdv.types.datatypes import Value
from sdv.types.signals import Datapoint, SignalMetadata
from sdv.types.status import Status

__all__ = ["PYTHON_TYPES", "SignalValue", "signal_value"]

T = TypeVar("T", bound=Value)

PYTHON_TYPES: dict[str, type[Value]] = {
    "boolean": bool,
    "string": str,
    "float": float,
    "double": float,
    **{f"{sign}int{bits}": int for sign in ("", "u") for bits in (8, 16, 32, 64)},
}
"""The Python type of each VSS datatype's values."""


class SignalValue(BaseModel, Generic[T]):
    """A signal's current value with its unit, measurement time and trust state.

    Attributes:
        path: the VSS path.
        value: the value, or None when the server cannot vouch for one now.
        unit: the VSS unit (``km/h``), if any.
        datatype: the VSS datatype (``float``, ``boolean``, ``uint8`` ...).
        timestamp: when the value was measured (UTC), if known.
        status: ``VALID``, or ``NOT_AVAILABLE`` when there is no value to trust.
    """

    model_config = ConfigDict(frozen=True)

    path: str
    value: T | None
    unit: str | None = None
    datatype: str
    timestamp: datetime | None = None
    status: Status

    @property
    def valid(self) -> bool:
        """Whether the value can be trusted now (``status`` is ``VALID``)."""
        return self.status is Status.VALID


def signal_value(meta: SignalMetadata, datapoint: Datapoint) -> SignalValue[Value]:
    """A datapoint of the client with its signal's metadata, as the SDK's value."""
    timestamp = None if datapoint.timestamp is None else datetime.fromtimestamp(datapoint.timestamp, UTC)
    return SignalValue[Value](
        path=meta.path,
        value=datapoint.value,
        unit=meta.unit,
        datatype=meta.datatype,
        timestamp=timestamp,
        status=datapoint.status,
    )
