"""The signal broker: the vehicle's current values, metadata, subscriptions and actuation routing.

Pure asyncio and threading; the gRPC edge (:mod:`sdv.api`) builds on it. The names below are loaded on first use,
so that importing one small module of the package (``sdv.broker.access``, say) does not load the whole broker
and the HAL behind it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdv.broker.broker import Broker
    from sdv.broker.config import Limits
    from sdv.broker.hal_bridge import HalBridge
    from sdv.broker.model import Datapoint, SignalMetadata, metadata_from_vehicle
    from sdv.broker.ownership import Owner, OwnerKind
    from sdv.broker.providers import ActuationProvider, HalProvider
    from sdv.broker.subscription import Subscription

_WHERE = {
    "ActuationProvider": "providers",
    "Broker": "broker",
    "Datapoint": "model",
    "HalBridge": "hal_bridge",
    "HalProvider": "providers",
    "Limits": "config",
    "Owner": "ownership",
    "OwnerKind": "ownership",
    "SignalMetadata": "model",
    "Subscription": "subscription",
    "metadata_from_vehicle": "model",
}

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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sdv.broker' has no attribute {name!r}")
    return getattr(importlib.import_module(f"sdv.broker.{module}"), name)
