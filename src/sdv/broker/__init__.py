"""The signal broker: the vehicle's current values, metadata, subscriptions and actuation routing.

Pure asyncio and threading; the gRPC edge (:mod:`sdv.api`) builds on it.
"""

from sdv.broker.broker import Broker
from sdv.broker.config import Limits
from sdv.broker.hal_bridge import HalBridge
from sdv.broker.model import Datapoint, SignalMetadata, metadata_from_vehicle
from sdv.broker.ownership import Owner, OwnerKind
from sdv.broker.providers import ActuationProvider, HalProvider
from sdv.broker.subscription import Subscription

__all__ = [
    "ActuationProvider",
    "Broker",
    "Datapoint",
    "HalBridge",
    "HalProvider",
    "Limits",
    "Owner",
    "OwnerKind",
    "SignalMetadata",
    "Subscription",
    "metadata_from_vehicle",
]
