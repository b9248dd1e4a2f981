"""Actuator requests: from a VSS value to the CAN frame that carries it.

An :class:`ActuatorEncoder` is compiled once per actuator signal of the profile. A request is validated against the
signal's datatype, min/max and allowed values, mapped back through the profile transform (the inverse of a linear
map or value table, or the ``inverse`` expression), and encoded into the
request message. The message's other signals keep the bits of the last frame of that message seen on the bus, or
the DBC start values (``GenSigStartValue``); where E2E protection is configured, the counter advances and the
checksum is recomputed over the final payload.
"""

from __future__ import annotations

from collections.abc import Callable

import can

from sdv.errors import ValueOutOfRangeError
from sdv.hal.codec import MessageCodec
from sdv.hal.e2e import checksum_function, compute_checksum
from sdv.hal.expressions import compile_expression
from sdv.hal.profile import SignalConfig
from sdv.hal.vehicle import VehicleDefinition, value_table_for
from sdv.types.datatypes import Scalar, Value, check_request

__all__ = ["ActuatorEncoder"]


class ActuatorEncoder:
    """Encoder of the requests for one actuator signal.

    Args:
        vehicle: the vehicle model.
        signal: the actuator's profile entry (``kind: actuator``).
    """

    def __init__(self, vehicle: VehicleDefinition, signal: SignalConfig) -> None:
        if signal.actuator is None:
            raise ValueError(f"{signal.path} is not an actuator")
        self.signal = signal
        self.path = signal.path
        self.bus = signal.actuator.bus or (signal.source.bus if signal.source else "")
        self.codec: MessageCodec = vehicle.codec(self.bus, signal.actuator.message)
        self.target = self.codec.signal(signal.actuator.signal)
        table = value_table_for(signal, self.target)
        self._inverse: Callable[[Scalar], float] | dict[Value, float]
        if table is not None:
            inverse: dict[Value, float] = {}
            for physical, value in table.items():
                inverse.setdefault(value, physical)
            self._inverse = inverse
        elif signal.transform is not None and signal.transform.inverse is not None:
            expression = compile_expression(signal.transform.inverse)
            self._inverse = lambda value: float(expression(float(value)))
        else:
            factor, offset = (
                (signal.transform.factor, signal.transform.offset) if signal.transform else (1.0, 0.0)
            )
            self._inverse = lambda value: (float(value) - offset) / factor
        settings = vehicle.messages.get((self.bus, self.codec.name))
        self._e2e = settings.e2e if settings is not None else None
        self._counter = -1
        self._defaults = self._default_payload()

    def _default_payload(self) -> bytes:
        payload = bytes(self.codec.length)
        for layout in self.codec.signals:
            if layout.initial is None or layout.multiplexer is not None:
                continue
            try:
                payload = self.codec.encode({layout.name: layout.initial}, payload)
            except ValueError:
                continue  # a start value outside the signal's bits: keep zero
        return payload

    def validate(self, value: object) -> Value:
        """The request as the signal's datatype, checked against min/max and the allowed values.

        Raises:
            ValueOutOfRangeError: naming the path, the value and what is accepted.
        """
        signal = self.signal
        return check_request(
            self.path, signal.datatype, value, minimum=signal.min, maximum=signal.max, allowed=signal.allowed
        )

    def encode(self, value: object, base: bytes | bytearray | None, timestamp: float) -> can.Message:
        """The frame that requests ``value``.

        Args:
            value: the requested VSS value.
            base: the last payload of the request message seen on the bus, if any.
            timestamp: the frame's timestamp.

        Raises:
            ValueOutOfRangeError: when the value is not accepted or cannot be encoded.
        """
        checked = self.validate(value)
        if isinstance(
            checked, tuple
        ):  # a profile signal's datatype is scalar, so validate() returns a scalar
            raise ValueOutOfRangeError(f"{self.path}: an array cannot be encoded into a frame")
        if isinstance(self._inverse, dict):
            if checked not in self._inverse:
                raise ValueOutOfRangeError(f"{self.path}: {checked!r} has no entry in the value table")
            physical: float = self._inverse[checked]
        else:
            try:
                physical = self._inverse(checked)
            except (ArithmeticError, ValueError) as error:
                raise ValueOutOfRangeError(f"{self.path}: {checked!r} cannot be encoded: {error}") from None
        values: dict[str, int | float] = {self.target.name: physical}
        if self.target.conversion != "linear" and float(physical).is_integer():
            values[self.target.name] = int(physical)
        payload = base if base is not None and len(base) >= self.codec.length else self._defaults
        try:
            if self._e2e is not None:
                counter = self.codec.signal(self._e2e.counter)
                self._counter = (self._counter + 1) % (1 << counter.length)
                values[self._e2e.counter] = self._counter
            data = self.codec.encode(values, payload)
            if self._e2e is not None:
                checksum = self.codec.signal(self._e2e.checksum)
                crc = compute_checksum(
                    checksum_function(self._e2e.algorithm),
                    data,
                    checksum.covered_bytes(8 * self.codec.length),
                    self._e2e.data_id,
                    checksum.length,
                )
                data = self.codec.encode({checksum.name: crc}, data)
        except ValueError as error:
            raise ValueOutOfRangeError(f"{self.path}: {error}") from None
        return can.Message(
            timestamp=timestamp,
            arbitration_id=self.codec.frame_id,
            is_extended_id=self.codec.is_extended,
            is_fd=self.codec.is_fd or self.codec.length > 8,
            bitrate_switch=self.codec.is_fd,
            dlc=len(data),
            data=data,
        )
