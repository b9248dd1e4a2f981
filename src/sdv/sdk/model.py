"""The runtime of generated vehicle models: typed signals bound to a :class:`~sdv.sdk.vehicle.Vehicle`.

``sdv codegen`` writes one class per VSS branch whose attributes are child branches and typed leaves, so that
``model.Speed`` is a ``Signal[float]`` and ``model.Body.Lights.Beam.Low.IsOn`` an ``Actuator[bool]``. mypy then
checks app code against the vehicle: ``set`` exists only on actuators and takes the actuator's value type.

Invariants:

* A signal object holds only its description and the vehicle; every call goes to the server.
* A value read is of the signal's Python type (``float`` for a ``Signal[float]``), or None when the server cannot
  vouch for it now; a value of another type is refused before anything is sent.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Generic, TypeVar, cast

from sdv.errors import ValueOutOfRangeError
from sdv.sdk.values import PYTHON_TYPES, SignalValue
from sdv.sdk.vehicle import Vehicle
from sdv.types.datatypes import Value

__all__ = ["Actuator", "Branch", "Signal"]

T = TypeVar("T", bound=Value)


class Branch:
    """A VSS branch of a generated model: its children are attributes.

    Args:
        vehicle: the connection every signal below uses.
        path: the branch's VSS path (``Vehicle.Body``).
    """

    def __init__(self, vehicle: Vehicle, path: str) -> None:
        self.vehicle = vehicle
        self.path = path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"


class Signal(Generic[T]):
    """A sensor or attribute: read and subscribe.

    Args:
        vehicle: the connection.
        path: the VSS path.
        datatype: the VSS datatype (``float``, ``boolean``, ``uint8`` ...).
        unit: the VSS unit, if any.
        kind: ``sensor``, ``attribute`` or ``actuator``.
        description: what the signal means.
    """

    def __init__(
        self,
        vehicle: Vehicle,
        path: str,
        *,
        datatype: str,
        unit: str | None = None,
        kind: str = "sensor",
        description: str = "",
    ) -> None:
        if datatype not in PYTHON_TYPES:
            raise ValueError(f"{path}: unknown datatype {datatype!r}")
        self.vehicle = vehicle
        self.path = path
        self.datatype = datatype
        self.unit = unit
        self.kind = kind
        self.description = description

    @property
    def python_type(self) -> type[Value]:
        """The Python type of the signal's values."""
        return PYTHON_TYPES[self.datatype]

    def __repr__(self) -> str:
        unit = f", unit={self.unit!r}" if self.unit else ""
        return f"{type(self).__name__}({self.path!r}, datatype={self.datatype!r}{unit})"

    async def get(self) -> SignalValue[T]:
        """The current value.

        Raises:
            ServerUnreachableError: the server does not answer.
        """
        return cast("SignalValue[T]", await self.vehicle.get(self.path))

    async def subscribe(self, *, min_interval_ms: int = 0) -> AsyncGenerator[SignalValue[T], None]:
        """Stream the value: first the current one, then each change (reconnecting as the vehicle's policy says).

        Args:
            min_interval_ms: the server sends a value at most this often (0: on every change).
        """
        updates = self.vehicle.subscribe([self.path], min_interval_ms=min_interval_ms)
        try:
            async for batch in updates:
                value = batch.get(self.path)
                if value is not None:
                    yield cast("SignalValue[T]", value)
        finally:
            await updates.aclose()


class Actuator(Signal[T]):
    """An actuator: read, subscribe, and ``set``."""

    async def set(self, value: T) -> None:
        """Ask for ``value``; returns once the vehicle carried the request out (the frame was sent).

        Raises:
            ValueOutOfRangeError: a value of another type than the actuator's, or outside its range.
            NoProviderError: no provider owns the actuator.
            ActuationError: the provider could not carry the request out.
        """
        expected = self.python_type
        # bool is an int in Python; a float actuator accepts an int (as mypy does), nothing else mixes.
        fits = isinstance(value, expected) and (expected is bool or not isinstance(value, bool))
        if not fits and not (expected is float and type(value) is int):
            name = expected.__name__
            article = "an" if name[0] in "aeiou" else "a"
            raise ValueOutOfRangeError(
                f"{self.path}: expected {article} {name} ({self.datatype}), got {value!r}"
            )
        await self.vehicle.actuate(self.path, value)
