"""The ``sdv.cockpit.v1.Cockpit`` servicer: instrument-cluster state and comfort commands.

Invariants:

* Fields are filled from the signals the profile's ``services.cockpit`` maps; a stream holds ONE broker
  subscription of those signals and sends a full ``ClusterState`` per broker batch that changes it, at most
  ``max_rate_hz`` a second (the subscription's minimum interval; 0 sends every change).
* A command answers once the broker's actuation returned, i.e. the HAL sent the request frame; every refusal is a
  project error that :func:`~sdv.api.errors.grpc_errors` maps to its status (``INVALID_ARGUMENT`` out of range,
  ``UNAVAILABLE`` no provider, ``DATA_LOSS`` frame not sent, ``UNIMPLEMENTED`` no actuator mapped).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc

from sdv._proto.sdv.cockpit.v1 import cockpit_pb2, cockpit_pb2_grpc
from sdv.api.calls import caller
from sdv.api.convert_services import ClusterStateBuilder, min_interval_ms
from sdv.api.errors import UnsupportedRequestError, grpc_errors
from sdv.broker import Broker
from sdv.types.datatypes import Value
from sdv.types.signals import Datapoint
from sdv.wire import timestamp_to_proto

__all__ = ["CockpitServicer"]

_Context = grpc.aio.ServicerContext[Any, Any]


class CockpitServicer(cockpit_pb2_grpc.CockpitServicer):
    """Serves ``sdv.cockpit.v1.Cockpit`` from a broker.

    Args:
        broker: the signals.
        mapping: the profile's ``services.cockpit`` (field name → VSS path).
    """

    SERVICE_NAME = "sdv.cockpit.v1.Cockpit"
    """Refusals name the RPC, not the profile's signals (:func:`~sdv.api.errors.grpc_errors`)."""

    def __init__(self, broker: Broker, mapping: Mapping[str, str]) -> None:
        self._broker = broker
        self._builder = ClusterStateBuilder(mapping)

    @grpc_errors
    async def GetClusterState(
        self, request: cockpit_pb2.GetClusterStateRequest, context: _Context
    ) -> cockpit_pb2.ClusterState:
        """The current cluster state."""
        return self._builder.build(
            {path: self._broker.get(path, access=caller()) for path in self._builder.paths}
        )

    @grpc_errors
    async def StreamClusterState(
        self, request: cockpit_pb2.StreamClusterStateRequest, context: _Context
    ) -> AsyncIterator[cockpit_pb2.ClusterState]:
        """The current state, then one per change, at most ``max_rate_hz`` a second."""
        subscription = self._broker.subscribe(
            self._builder.paths, min_interval_ms=min_interval_ms(request.max_rate_hz), access=caller()
        )
        try:
            current: dict[str, Datapoint] = {}
            previous: cockpit_pb2.ClusterState | None = None
            async for batch in subscription:
                current.update(batch)
                state = self._builder.build(current)
                # A change the message cannot show (a float below float32 resolution) sends nothing.
                unchanged = cockpit_pb2.ClusterState()
                unchanged.CopyFrom(state)
                unchanged.ClearField("timestamp")
                if unchanged == previous:
                    continue
                previous = unchanged
                yield state
        finally:
            subscription.close()

    async def _command(self, field: str, value: Value) -> cockpit_pb2.CommandResult:
        path = self._builder.mapping.get(field)
        if path is None:
            raise UnsupportedRequestError(
                f"this vehicle's profile maps no actuator to services.cockpit.{field}"
            )
        await self._broker.actuate([(path, value)], access=caller())
        result = cockpit_pb2.CommandResult(path=path)
        timestamp_to_proto(time.time(), result.sent)
        return result

    @grpc_errors
    async def SetLowBeam(
        self, request: cockpit_pb2.SetLowBeamRequest, context: _Context
    ) -> cockpit_pb2.CommandResult:
        """Switch the low beam; answers once the request frame was sent."""
        return await self._command("low_beam", request.on)

    @grpc_errors
    async def SetCabinTemperature(
        self, request: cockpit_pb2.SetCabinTemperatureRequest, context: _Context
    ) -> cockpit_pb2.CommandResult:
        """Request a cabin temperature; answers once the request frame was sent."""
        return await self._command("target_cabin_temperature", request.celsius)
