"""gRPC health of each CAN bus: ``sdv.hal.bus.<bus>`` is ``SERVING`` while the bus is ``UP``.

The reporter follows the buses' ``Sdv.Hal.Bus.<bus>.State`` signals through an ordinary broker subscription, so
the broker and the HAL know nothing of gRPC and the server needs no reference to the HAL: whoever publishes the
state signals (the HAL bridge of ``sdv serve``) drives the health statuses.

Invariants:

* A bus's health service name exists from server start, ``NOT_SERVING`` until its state is known to be ``UP``;
  every other state (``CONNECTING``, ``DOWN``, ``ENDED``, no value) is ``NOT_SERVING``.
* The overall ``""`` status is not touched: it tells whether the server is up. A vehicle with one bus down still
  serves the other buses' signals, its actuators and the typed services, and restarting the server would not
  bring a bus back.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from grpc_health.v1 import health_pb2

from sdv.broker import Broker, Subscription
from sdv.broker.access import UNRESTRICTED
from sdv.errors import UnknownSignalError
from sdv.types.signals import Datapoint
from sdv.types.status import Status

__all__ = ["BusHealthReporter", "bus_health_name"]

_BUSES = "Sdv.Hal.Bus"
_STATE = ".State"
_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def bus_health_name(bus: str) -> str:
    """The health service name of a bus (``sdv.hal.bus.vehicle``)."""
    return f"sdv.hal.bus.{bus}"


def _status(datapoint: Datapoint) -> Any:
    up = datapoint.value == "UP" and datapoint.status is Status.VALID
    return _SERVING if up else _NOT_SERVING


class BusHealthReporter:
    """Keeps one health status per bus in step with the bus's state signal.

    Args:
        broker: the broker whose ``Sdv.Hal.Bus.<bus>.State`` signals are followed.
        health: the server's asyncio health servicer.
    """

    def __init__(self, broker: Broker, health: Any) -> None:
        self._broker = broker
        self._health = health
        self._names: dict[str, str] = {}  # state signal path -> health service name
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def service_names(self) -> tuple[str, ...]:
        """The buses' health service names (after :meth:`start`)."""
        return tuple(self._names.values())

    async def start(self) -> None:
        """Publish every bus's current health and follow its changes (call from the server's event loop)."""
        try:
            metas = self._broker.list_metadata(_BUSES, access=UNRESTRICTED)
        except UnknownSignalError:
            return  # a broker without a HAL: no buses to report
        # Bus names may contain dots, so the name is what lies between the branch and the signal name.
        self._names = {
            meta.path: bus_health_name(meta.path[len(_BUSES) + 1 : -len(_STATE)])
            for meta in metas
            if meta.path.endswith(_STATE)
        }
        if not self._names:
            return
        for path, name in self._names.items():
            await self._health.set(name, _status(self._broker.get(path, access=UNRESTRICTED)))
        self._subscription = self._broker.subscribe(list(self._names), counted=False, access=UNRESTRICTED)
        self._task = asyncio.create_task(self._follow(self._subscription), name="sdv-bus-health")

    async def _follow(self, subscription: Subscription) -> None:
        async for batch in subscription:
            for path, datapoint in batch.items():
                await self._health.set(self._names[path], _status(datapoint))

    async def stop(self) -> None:
        """Stop following the states (the statuses stay as they were)."""
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
