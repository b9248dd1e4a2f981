"""Proto → domain conversions of the client: ``kuksa.val.v2`` messages as the broker's own types.

The client speaks in the types an in-process app of the broker sees (:class:`~sdv.broker.Datapoint`,
:class:`~sdv.broker.SignalMetadata`), so an app can move between the two without changes. The opposite direction
(values into requests) reuses :mod:`sdv.wire`, the one module that defines the wire form of each datatype.

Invariants:

* A datapoint received without a value has the status ``NOT_AVAILABLE``: the v2 API has no status field, and a
  server sends no value for anything it cannot vouch for (never received, stale, failed its E2E check).
* A ``float`` value travels as a 32-bit float; it is returned as the shortest decimal that reads back as the same
  32-bit float (``87.3``, not ``87.30000305175781``), which is the value the vehicle sent.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from sdv._proto.kuksa.val.v1 import types_pb2 as v1
from sdv._proto.kuksa.val.v2 import types_pb2 as v2
from sdv.types.datatypes import Scalar, Value
from sdv.types.signals import Datapoint, SignalMetadata
from sdv.types.status import Status
from sdv.wire import DATA_TYPES_V2, ENTRY_TYPES_V2, timestamp_from_proto

__all__ = [
    "datapoint_from_v1",
    "datapoint_from_v2",
    "metadata_from_v2",
    "shortest_float32",
    "untyped_value_from_v2",
]

_DATATYPES: Mapping[int, str] = {number: name for name, number in DATA_TYPES_V2.items()}
_KINDS: Mapping[int, str] = {number: name for name, number in ENTRY_TYPES_V2.items()}
_ARRAYS = (
    "string_array",
    "bool_array",
    "int32_array",
    "int64_array",
    "uint32_array",
    "uint64_array",
    "float_array",
    "double_array",
)
_FLOAT32 = struct.Struct("<f")


def shortest_float32(number: float) -> float:
    """The shortest decimal that encodes to the same 32-bit float as ``number``."""
    packed = _FLOAT32.pack(number)
    for digits in range(6, 10):  # 9 significant digits always round-trip a 32-bit float
        candidate = float(f"{number:.{digits}g}")
        if _FLOAT32.pack(candidate) == packed:
            return candidate
    return number  # pragma: no cover - unreachable for finite floats; inf and nan return at 6 digits


def untyped_value_from_v2(value: v2.Value) -> Value | None:
    """The Python value of a v2 ``Value`` (a tuple for an array), or None when it carries none."""
    return _untyped_value(value, "typed_value")


def _untyped_value(message: v1.Datapoint | v2.Value, oneof: str) -> Value | None:
    """The value in oneof ``oneof`` of a v2 ``Value`` or a v1 ``Datapoint`` (both name the members alike)."""
    member = message.WhichOneof(oneof)  # type: ignore[arg-type]
    if member is None:
        return None
    if member in _ARRAYS:
        items: list[Scalar] = list(getattr(message, member).values)
        if member == "float_array":
            items = [shortest_float32(float(item)) for item in items]
        return tuple(items)
    scalar: Scalar = getattr(message, member)
    if member == "float":
        return shortest_float32(float(scalar))
    return scalar


def datapoint_from_v2(datapoint: v2.Datapoint) -> Datapoint:
    """A v2 ``Datapoint`` as the broker's datapoint (``NOT_AVAILABLE`` without a value)."""
    timestamp = timestamp_from_proto(datapoint.timestamp) if datapoint.HasField("timestamp") else None
    value = untyped_value_from_v2(datapoint.value) if datapoint.HasField("value") else None
    return Datapoint(value, timestamp, Status.NOT_AVAILABLE if value is None else Status.VALID)


def datapoint_from_v1(datapoint: v1.Datapoint) -> Datapoint:
    """A v1 ``Datapoint`` (an actuator's target, which only v1 reads) as the broker's datapoint."""
    timestamp = timestamp_from_proto(datapoint.timestamp) if datapoint.HasField("timestamp") else None
    value = _untyped_value(datapoint, "value")
    return Datapoint(value, timestamp, Status.NOT_AVAILABLE if value is None else Status.VALID)


def _bound(value: v2.Value, present: bool) -> float | None:
    if not present:
        return None
    bound = untyped_value_from_v2(value)
    return float(bound) if isinstance(bound, int | float) and not isinstance(bound, bool) else None


def _allowed(metadata: v2.Metadata) -> tuple[Value, ...] | None:
    if not metadata.HasField("allowed_values"):
        return None
    member = metadata.allowed_values.WhichOneof("typed_value")
    if member not in _ARRAYS:
        return None
    values = untyped_value_from_v2(metadata.allowed_values)
    return values if isinstance(values, tuple) else None


def metadata_from_v2(metadata: v2.Metadata) -> SignalMetadata:
    """A v2 ``Metadata`` as the broker's signal metadata (an unspecified datatype or kind is kept by name)."""
    return SignalMetadata(
        id=metadata.id,
        path=metadata.path,
        kind=_KINDS.get(metadata.entry_type, v2.EntryType.Name(metadata.entry_type).lower()),
        datatype=_DATATYPES.get(metadata.data_type, v2.DataType.Name(metadata.data_type).lower()),
        unit=metadata.unit or None,
        min=_bound(metadata.min, metadata.HasField("min")),
        max=_bound(metadata.max, metadata.HasField("max")),
        allowed=_allowed(metadata),
        description=metadata.description,
        comment=metadata.comment or None,
        deprecation=metadata.deprecation or None,
    )
