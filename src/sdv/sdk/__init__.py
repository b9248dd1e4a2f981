"""The app SDK: ``async with sdv.connect(...) as vehicle`` for typed values, subscriptions that survive a server
restart, actuation, a blocking facade for scripts, and the runtime of generated vehicle models.

Values are :class:`SignalValue` models; refused requests raise the :mod:`sdv.errors` tree, and a server that
cannot be reached raises :class:`ServerUnreachableError` (an ``SdvError`` and a ``ConnectionError``).
"""

from sdv.client import DEFAULT_SERVER, ServerUnreachableError
from sdv.sdk.model import Actuator, Branch, Signal
from sdv.sdk.reconnect import ReconnectPolicy
from sdv.sdk.services import Adas, ClusterState, Cockpit, Measurement, Validity, VehicleDynamics
from sdv.sdk.sync import SyncVehicle, connect_sync
from sdv.sdk.values import SignalValue
from sdv.sdk.vehicle import Vehicle, connect
from sdv.types.datatypes import Value

__all__ = [
    "DEFAULT_SERVER",
    "Actuator",
    "Adas",
    "Branch",
    "ClusterState",
    "Cockpit",
    "Measurement",
    "ReconnectPolicy",
    "ServerUnreachableError",
    "Signal",
    "SignalValue",
    "SyncVehicle",
    "Validity",
    "Value",
    "Vehicle",
    "VehicleDynamics",
    "connect",
    "connect_sync",
]
