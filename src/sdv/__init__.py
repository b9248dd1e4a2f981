"""sdv: on-board middleware for software-defined vehicles.

The hardware abstraction layer (:mod:`sdv.hal`) turns CAN frames into typed VSS signals and actuator requests back
into frames; later layers serve them over gRPC and install signed updates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sdv.errors import (
    AccessDenied,
    ActuationError,
    AlreadyProvidedError,
    AuthenticationError,
    BindError,
    BusError,
    CatalogueError,
    ConfigError,
    DbcError,
    FileWriteError,
    FrameError,
    HalError,
    LimitExceededError,
    NoProviderError,
    OtaError,
    OutcomeUnknownError,
    OwnerUnreachableError,
    Problem,
    ProfileError,
    ProviderTimeoutError,
    ReadOnlyError,
    ScopeError,
    SdvError,
    SecurityConfigError,
    ServerUnreachableError,
    SignalError,
    UnknownSignalError,
    UnsupportedRequestError,
    ValueOutOfRangeError,
    VerificationError,
    WrongServiceError,
)
from sdv.version import __version__

if TYPE_CHECKING:
    from sdv.sdk import SyncVehicle, connect, connect_sync


# The SDK imports grpc; ``import sdv`` stays light and loads it on first use of these names.
_SDK_NAMES = frozenset({"SyncVehicle", "connect", "connect_sync"})

__all__ = [
    "AccessDenied",
    "ActuationError",
    "AlreadyProvidedError",
    "AuthenticationError",
    "BindError",
    "BusError",
    "CatalogueError",
    "ConfigError",
    "DbcError",
    "FileWriteError",
    "FrameError",
    "HalError",
    "LimitExceededError",
    "NoProviderError",
    "OtaError",
    "OutcomeUnknownError",
    "OwnerUnreachableError",
    "Problem",
    "ProfileError",
    "ProviderTimeoutError",
    "ReadOnlyError",
    "ScopeError",
    "SdvError",
    "SecurityConfigError",
    "ServerUnreachableError",
    "SignalError",
    "SyncVehicle",
    "UnknownSignalError",
    "UnsupportedRequestError",
    "ValueOutOfRangeError",
    "VerificationError",
    "WrongServiceError",
    "__version__",
    "connect",
    "connect_sync",
]


def __getattr__(name: str) -> Any:
    if name in _SDK_NAMES:
        from sdv import sdk  # noqa: PLC0415

        return getattr(sdk, name)
    raise AttributeError(f"module 'sdv' has no attribute {name!r}")
