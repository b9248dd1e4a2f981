"""Typed access to the typed services: ``vehicle.cockpit`` (``sdv.cockpit.v1``) and ``vehicle.adas`` (``sdv.adas.v1``).

Example::

    async with sdv.connect("127.0.0.1:55555") as vehicle:
        state = await vehicle.cockpit.get()
        print(state.speed, state.gear)
        await vehicle.cockpit.set_low_beam(True)
        async for dynamics in vehicle.adas.stream(max_rate_hz=10):
            acceleration = dynamics.longitudinal_acceleration
            if acceleration.valid:
                print(acceleration.value)

Invariants:

* Values come back as pydantic models: :class:`ClusterState` (a field is None when the server has no
  trustworthy value for it, or the profile maps nothing to it) and :class:`VehicleDynamics` (every field a
  :class:`Measurement` with its value, UTC timestamp and :class:`Validity`).
* A 32-bit float of the cockpit service comes back as the shortest decimal with the same encoding (``12.3``, not
  ``12.300000190734863``).
* Failed calls raise the :mod:`sdv.errors` tree through the client's own mapping of gRPC statuses; a server that
  does not serve the service (its profile maps none of the service's fields) or a command whose actuator the
  profile does not map raises :class:`~sdv.api.errors.UnsupportedRequestError` (``UNIMPLEMENTED``).
* Streams outlive a dropped connection exactly like :meth:`Vehicle.subscribe <sdv.sdk.vehicle.Vehicle.subscribe>`:
  they wait as the vehicle's :class:`~sdv.sdk.reconnect.ReconnectPolicy` says, connect again and go on with the
  current state. Other errors end them at once.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, ConfigDict

from sdv._proto.sdv.adas.v1 import adas_pb2, adas_pb2_grpc
from sdv._proto.sdv.cockpit.v1 import cockpit_pb2, cockpit_pb2_grpc
from sdv.client.convert import shortest_float32
from sdv.client.errors import ServerUnreachableError
from sdv.errors import SdvError, UnsupportedRequestError
from sdv.wire import timestamp_from_proto

if TYPE_CHECKING:
    from sdv.sdk.connection import SdkClient
    from sdv.sdk.vehicle import Vehicle

__all__ = ["Adas", "ClusterState", "Cockpit", "Measurement", "Validity", "VehicleDynamics"]

_COCKPIT = cockpit_pb2.DESCRIPTOR.services_by_name["Cockpit"].full_name
_ADAS = adas_pb2.DESCRIPTOR.services_by_name["Adas"].full_name
_Message = TypeVar("_Message")
_Model = TypeVar("_Model")


class Validity(enum.Enum):
    """Whether an ADAS measurement may be used right now."""

    VALID = "valid"
    STALE = "stale"
    """Its message stopped arriving (freshness monitoring); the value is the last one received."""
    E2E_FAILED = "e2e_failed"
    """Its message failed the end-to-end check (counter or checksum); the value is the last one received."""
    NOT_AVAILABLE = "not_available"
    """No value was ever received (the value is NaN), or the profile maps no signal to the field."""


_VALIDITY: dict[int, Validity] = {
    adas_pb2.VALID: Validity.VALID,
    adas_pb2.STALE: Validity.STALE,
    adas_pb2.E2E_FAILED: Validity.E2E_FAILED,
    adas_pb2.NOT_AVAILABLE: Validity.NOT_AVAILABLE,
}


def _datetime(stamp: Timestamp) -> datetime:
    return datetime.fromtimestamp(timestamp_from_proto(stamp), UTC)


class ClusterState(BaseModel):
    """The instrument cluster's state: a field is None when not available (no trustworthy value, or unmapped).

    Units are the VSS units: km/h, percent, m, celsius. ``gear`` follows VSS: 0 neutral, -1 reverse, 126 park,
    127 drive.
    """

    model_config = ConfigDict(frozen=True)

    timestamp: datetime
    """When the server assembled this state (UTC)."""
    speed: float | None = None
    gear: int | None = None
    state_of_charge: float | None = None
    range: float | None = None
    turn_left: bool | None = None
    turn_right: bool | None = None
    door_front_left_open: bool | None = None
    door_front_right_open: bool | None = None
    door_rear_left_open: bool | None = None
    door_rear_right_open: bool | None = None
    trunk_open: bool | None = None
    low_beam: bool | None = None
    high_beam: bool | None = None
    outside_temperature: float | None = None
    cabin_temperature: float | None = None
    target_cabin_temperature: float | None = None

    @classmethod
    def from_proto(cls, message: cockpit_pb2.ClusterState) -> ClusterState:
        """The model of a ``sdv.cockpit.v1.ClusterState`` message."""
        values: dict[str, Any] = {"timestamp": _datetime(message.timestamp)}
        for field in message.DESCRIPTOR.fields:
            if field.name == "timestamp" or not message.HasField(field.name):  # type: ignore[arg-type]
                continue
            value = getattr(message, field.name)
            if field.cpp_type == FieldDescriptor.CPPTYPE_FLOAT:
                value = shortest_float32(value)
            values[field.name] = value
        return cls(**values)


class Measurement(BaseModel):
    """One ADAS value with its source timestamp and validity: use ``value`` only when :attr:`valid`."""

    model_config = ConfigDict(frozen=True)

    value: float
    """The value (NaN when none was ever received); a boolean is 1.0 or 0.0."""
    timestamp: datetime | None
    """When the value was measured or its validity last changed (UTC); None if never."""
    validity: Validity

    @property
    def valid(self) -> bool:
        """Whether the value can be trusted now (``validity`` is ``VALID``)."""
        return self.validity is Validity.VALID

    @classmethod
    def from_proto(cls, message: adas_pb2.Measurement) -> Measurement:
        """The model of a ``sdv.adas.v1.Measurement`` message."""
        validity = _VALIDITY.get(message.validity, Validity.NOT_AVAILABLE)
        timestamp = _datetime(message.timestamp) if message.HasField("timestamp") else None
        return cls(value=message.value, timestamp=timestamp, validity=validity)


class VehicleDynamics(BaseModel):
    """The vehicle's dynamics, every field a :class:`Measurement`.

    Units: km/h (speeds), degrees/s positive left (yaw rate), m/s² (accelerations), degrees positive left
    (steering angle), percent (accelerator pedal), 1/0 (brake pressed), bar (brake pressure), m (lead vehicle
    distance), m/s (lead vehicle relative speed).
    """

    model_config = ConfigDict(frozen=True)

    speed: Measurement
    wheel_speed_front_left: Measurement
    wheel_speed_front_right: Measurement
    wheel_speed_rear_left: Measurement
    wheel_speed_rear_right: Measurement
    yaw_rate: Measurement
    lateral_acceleration: Measurement
    longitudinal_acceleration: Measurement
    steering_angle: Measurement
    accelerator_pedal: Measurement
    brake_pressed: Measurement
    brake_pressure: Measurement
    lead_vehicle_distance: Measurement
    lead_vehicle_relative_speed: Measurement

    @classmethod
    def from_proto(cls, message: adas_pb2.VehicleDynamics) -> VehicleDynamics:
        """The model of a ``sdv.adas.v1.VehicleDynamics`` message."""
        return cls(
            **{
                field.name: Measurement.from_proto(getattr(message, field.name))
                for field in message.DESCRIPTOR.fields
            }
        )


def _error(
    client: SdkClient, service: str, error: grpc.aio.AioRpcError, *, command: bool = False
) -> SdvError:
    """A failed call of a typed service as the project's exception."""
    if error.code() == grpc.StatusCode.UNIMPLEMENTED:
        details = error.details() or ""
        if "Method not found" in details or not details:
            return UnsupportedRequestError(
                f"{client.target} does not serve {service}: its vehicle profile maps none of the service's fields"
            )
        return UnsupportedRequestError(details)
    return client.translate(error, actuation=command)


class _Service:
    """What both typed services share: the vehicle's connection, its error mapping and its reconnection."""

    _name: str

    def __init__(self, vehicle: Vehicle) -> None:
        self._vehicle = vehicle

    async def _call(
        self, client: SdkClient, rpc: Callable[..., Any], request: Any, *, command: bool = False
    ) -> Any:
        try:
            return await rpc(request, timeout=client.timeout)
        except grpc.aio.AioRpcError as error:
            raise _error(client, self._name, error, command=command) from error

    async def _stream(
        self,
        open_call: Callable[[SdkClient], grpc.aio.UnaryStreamCall[Any, _Message]],
        convert: Callable[[_Message], _Model],
    ) -> AsyncGenerator[_Model, None]:
        # The reconnection of Vehicle.subscribe: a dropped connection waits as the policy says, then goes on.
        vehicle = self._vehicle
        failed_attempts = 0
        while True:
            client = vehicle._require_client()
            call = open_call(client)
            try:
                async for message in call:
                    failed_attempts = 0
                    yield convert(message)
                return  # the server ended the stream on purpose
            except grpc.aio.AioRpcError as error:
                translated = _error(client, self._name, error)
                if not isinstance(translated, ServerUnreachableError) or vehicle._client is None:
                    raise translated from error
                failed_attempts = await vehicle._wait_and_reconnect(client, failed_attempts, translated)
            finally:
                call.cancel()


class Cockpit(_Service):
    """The ``sdv.cockpit.v1.Cockpit`` service of a vehicle: cluster state and comfort commands."""

    _name = _COCKPIT

    def _stub(self, client: SdkClient) -> cockpit_pb2_grpc.CockpitAsyncStub:
        return cockpit_pb2_grpc.CockpitStub(client.channel)

    async def get(self) -> ClusterState:
        """The current cluster state.

        Raises:
            UnsupportedRequestError: the server does not serve the cockpit service.
            ServerUnreachableError: the server does not answer.
        """
        client = self._vehicle._require_client()
        message = await self._call(
            client, self._stub(client).GetClusterState, cockpit_pb2.GetClusterStateRequest()
        )
        return ClusterState.from_proto(message)

    def stream(self, max_rate_hz: int = 0) -> AsyncGenerator[ClusterState, None]:
        """The current cluster state, then a new one whenever it changes, at most ``max_rate_hz`` a second.

        Close the iterator (``contextlib.aclosing``) or leave the ``Vehicle`` to end it; a dropped connection is
        bridged as the vehicle's :class:`~sdv.sdk.reconnect.ReconnectPolicy` says.

        Raises:
            UnsupportedRequestError: the server does not serve the cockpit service (on the first iteration).
            ServerUnreachableError: the connection dropped and the policy gave up.
        """
        request = cockpit_pb2.StreamClusterStateRequest(max_rate_hz=max_rate_hz)
        return self._stream(
            lambda client: self._stub(client).StreamClusterState(request), ClusterState.from_proto
        )

    async def _command(self, rpc: str, request: Any) -> None:
        client = self._vehicle._require_client()
        await self._call(client, getattr(self._stub(client), rpc), request, command=True)

    async def set_low_beam(self, on: bool) -> None:
        """Switch the low beam; returns once the request frame was sent.

        Raises:
            UnsupportedRequestError: the server does not serve the cockpit service, or maps no low beam.
            NoProviderError: no provider owns the actuator.
            ActuationError: the frame could not be sent.
        """
        await self._command("SetLowBeam", cockpit_pb2.SetLowBeamRequest(on=on))

    async def set_cabin_temperature(self, celsius: float) -> None:
        """Request a cabin temperature; returns once the request frame was sent.

        Raises:
            ValueOutOfRangeError: outside the actuator's range, or a fraction for an integer actuator (VSS 4.0's
                station temperature is ``int8``, whole degrees).
            UnsupportedRequestError: the server does not serve the cockpit service, or maps no cabin temperature.
            NoProviderError: no provider owns the actuator.
            ActuationError: the frame could not be sent.
        """
        await self._command("SetCabinTemperature", cockpit_pb2.SetCabinTemperatureRequest(celsius=celsius))


class Adas(_Service):
    """The ``sdv.adas.v1.Adas`` service of a vehicle: dynamics with a timestamp and validity per value."""

    _name = _ADAS

    def _stub(self, client: SdkClient) -> adas_pb2_grpc.AdasAsyncStub:
        return adas_pb2_grpc.AdasStub(client.channel)

    async def snapshot(self) -> VehicleDynamics:
        """The current dynamics.

        Raises:
            UnsupportedRequestError: the server does not serve the ADAS service.
            ServerUnreachableError: the server does not answer.
        """
        client = self._vehicle._require_client()
        message = await self._call(client, self._stub(client).GetDynamics, adas_pb2.GetDynamicsRequest())
        return VehicleDynamics.from_proto(message)

    def stream(self, max_rate_hz: int = 0) -> AsyncGenerator[VehicleDynamics, None]:
        """The current dynamics, then new ones whenever a value or validity changes, at most ``max_rate_hz`` a second.

        Close the iterator (``contextlib.aclosing``) or leave the ``Vehicle`` to end it; a dropped connection is
        bridged as the vehicle's :class:`~sdv.sdk.reconnect.ReconnectPolicy` says.

        Raises:
            UnsupportedRequestError: the server does not serve the ADAS service (on the first iteration).
            ServerUnreachableError: the connection dropped and the policy gave up.
        """
        request = adas_pb2.StreamDynamicsRequest(max_rate_hz=max_rate_hz)
        return self._stream(
            lambda client: self._stub(client).StreamDynamics(request), VehicleDynamics.from_proto
        )
