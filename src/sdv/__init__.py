"""sdv: on-board middleware for software-defined vehicles.

The hardware abstraction layer (:mod:`sdv.hal`) turns CAN frames into typed VSS signals and actuator requests back
into frames; later layers serve them over gRPC and install signed updates.
"""

from __future__ import annotations

from sdv.errors import (
    AccessDenied,
    ActuationError,
    DbcError,
    FrameError,
    HalError,
    OtaError,
    Problem,
    ProfileError,
    ReadOnlyError,
    SdvError,
    UnknownSignalError,
    ValueOutOfRangeError,
    VerificationError,
)

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "ActuationError",
    "DbcError",
    "FrameError",
    "HalError",
    "OtaError",
    "Problem",
    "ProfileError",
    "ReadOnlyError",
    "SdvError",
    "UnknownSignalError",
    "ValueOutOfRangeError",
    "VerificationError",
    "__version__",
]
