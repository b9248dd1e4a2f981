"""The ``sdv.adas.v1.Adas`` servicer: vehicle dynamics with a timestamp and a validity per value.

Invariants:

* Fields are filled from the signals the profile's ``services.adas`` maps; a stream holds ONE broker subscription
  of those signals and sends a full ``VehicleDynamics`` per broker batch, at most ``max_rate_hz`` a second (0:
  every batch). A status change (stale, E2E failure, recovery) is a change, so it is always sent.
* Validity is the broker's datapoint status, unchanged: freshness and E2E are decided by the HAL, not here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc

from sdv._proto.sdv.adas.v1 import adas_pb2, adas_pb2_grpc
from sdv.api.calls import caller
from sdv.api.convert_services import DynamicsBuilder, min_interval_ms
from sdv.api.errors import grpc_errors
from sdv.broker import Broker
from sdv.types.signals import Datapoint

__all__ = ["AdasServicer"]

_Context = grpc.aio.ServicerContext[Any, Any]


class AdasServicer(adas_pb2_grpc.AdasServicer):
    """Serves ``sdv.adas.v1.Adas`` from a broker.

    Args:
        broker: the signals.
        mapping: the profile's ``services.adas`` (field name → VSS path).
    """

    SERVICE_NAME = "sdv.adas.v1.Adas"
    """Refusals name the RPC, not the profile's signals (:func:`~sdv.api.errors.grpc_errors`)."""

    def __init__(self, broker: Broker, mapping: Mapping[str, str]) -> None:
        self._broker = broker
        self._builder = DynamicsBuilder(mapping)

    @grpc_errors
    async def GetDynamics(
        self, request: adas_pb2.GetDynamicsRequest, context: _Context
    ) -> adas_pb2.VehicleDynamics:
        """The current dynamics."""
        return self._builder.build(
            {path: self._broker.get(path, access=caller()) for path in self._builder.paths}
        )

    @grpc_errors
    async def StreamDynamics(
        self, request: adas_pb2.StreamDynamicsRequest, context: _Context
    ) -> AsyncIterator[adas_pb2.VehicleDynamics]:
        """The current dynamics, then one message per broker batch, at most ``max_rate_hz`` a second."""
        subscription = self._broker.subscribe(
            self._builder.paths, min_interval_ms=min_interval_ms(request.max_rate_hz), access=caller()
        )
        try:
            current: dict[str, Datapoint] = {}
            async for batch in subscription:
                current.update(batch)
                yield self._builder.build(current)
        finally:
            subscription.close()
