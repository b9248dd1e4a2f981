"""Proto ↔ domain conversions of the gRPC edge: the one module that knows both the KUKSA messages and the broker's types.

Invariants:

* A value travels in the ``Value``/``Datapoint`` oneof member that its VSS datatype prescribes (8- and 16-bit
  integers in the 32-bit members, as KUKSA does; an array datatype in the matching ``*_array`` member, as a
  tuple in the domain); a request whose member does not match the signal's datatype is
  refused with :class:`~sdv.errors.ValueOutOfRangeError` naming the path, the datatype and the member received.
  Range and allowed-value checks are the broker's, not this module's.
* A datapoint is served with a value only when its status is ``VALID``; otherwise it carries its timestamp and
  no value (KUKSA's "no value" datapoint).
* Timestamps are seconds since the epoch in the domain and ``google.protobuf.Timestamp`` on the wire, converted
  with nanosecond resolution.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from sdv._proto.kuksa.val.v1 import types_pb2 as v1
from sdv._proto.kuksa.val.v2 import types_pb2 as v2
from sdv.errors import ValueOutOfRangeError
from sdv.types.datatypes import INTEGER_RANGES, Value
from sdv.types.signals import Datapoint, SignalMetadata
from sdv.types.status import Status

__all__ = [
    "DATA_TYPES_V1",
    "DATA_TYPES_V2",
    "ENTRY_TYPES_V1",
    "ENTRY_TYPES_V2",
    "VALUE_FIELDS",
    "datapoint_to_v1",
    "datapoint_to_v2",
    "fill_datapoint_v2",
    "metadata_to_v1",
    "metadata_to_v2",
    "timestamp_from_proto",
    "timestamp_to_proto",
    "value_from_v1",
    "value_from_v2",
    "value_to_v2",
]

_SCALAR_FIELDS: Mapping[str, str] = {
    "boolean": "bool",
    "string": "string",
    "int8": "int32",
    "int16": "int32",
    "int32": "int32",
    "int64": "int64",
    "uint8": "uint32",
    "uint16": "uint32",
    "uint32": "uint32",
    "uint64": "uint64",
    "float": "float",
    "double": "double",
}
_ARRAY_FIELDS: Mapping[str, str] = {
    "bool": "bool_array",
    "string": "string_array",
    "int32": "int32_array",
    "int64": "int64_array",
    "uint32": "uint32_array",
    "uint64": "uint64_array",
    "float": "float_array",
    "double": "double_array",
}
_ARRAY_MEMBERS = frozenset(_ARRAY_FIELDS.values())

VALUE_FIELDS: Mapping[str, str] = {
    **_SCALAR_FIELDS,
    **{f"{datatype}[]": _ARRAY_FIELDS[field] for datatype, field in _SCALAR_FIELDS.items()},
}
"""The oneof member (same name in v1 ``Datapoint.value`` and v2 ``Value.typed_value``) of each VSS datatype."""


def _enum_name(datatype: str) -> str:
    return "DATA_TYPE_" + (datatype[:-2].upper() + "_ARRAY" if datatype.endswith("[]") else datatype.upper())


DATA_TYPES_V2: Mapping[str, v2.DataType.ValueType] = {
    datatype: v2.DataType.Value(_enum_name(datatype)) for datatype in VALUE_FIELDS
}
DATA_TYPES_V1: Mapping[str, v1.DataType.ValueType] = {
    datatype: v1.DataType.Value(_enum_name(datatype)) for datatype in VALUE_FIELDS
}
ENTRY_TYPES_V2: Mapping[str, v2.EntryType.ValueType] = {
    kind: v2.EntryType.Value(f"ENTRY_TYPE_{kind.upper()}") for kind in ("sensor", "actuator", "attribute")
}
ENTRY_TYPES_V1: Mapping[str, v1.EntryType.ValueType] = {
    kind: v1.EntryType.Value(f"ENTRY_TYPE_{kind.upper()}") for kind in ("sensor", "actuator", "attribute")
}
_NANOS = 1_000_000_000


# --- timestamps ------------------------------------------------------------------------------------------------
def split_seconds(seconds: float) -> tuple[int, int]:
    """Whole seconds and nanoseconds of a time, without the float error of scaling it whole by 1e9.

    Today's epoch times are too large for a float to hold in nanoseconds; only the fraction is scaled.
    """
    whole = math.floor(seconds)
    nanos = round((seconds - whole) * _NANOS)
    if nanos == _NANOS:
        return whole + 1, 0
    return whole, nanos


def timestamp_to_proto(seconds: float, target: Timestamp | None = None) -> Timestamp:
    """``seconds`` since the epoch as a protobuf timestamp (filled into ``target`` when given)."""
    stamp = Timestamp() if target is None else target
    stamp.seconds, stamp.nanos = split_seconds(seconds)
    return stamp


def timestamp_from_proto(stamp: Timestamp) -> float:
    """A protobuf timestamp as seconds since the epoch."""
    return stamp.seconds + stamp.nanos / _NANOS


# --- values ----------------------------------------------------------------------------------------------------
def _value_field(meta: SignalMetadata) -> str:
    try:
        return VALUE_FIELDS[meta.datatype]
    except KeyError:
        raise ValueOutOfRangeError(f"{meta.path}: datatype {meta.datatype!r} has no wire form") from None


def _typed_value(meta: SignalMetadata, message: Any, oneof: str) -> Value:
    received = message.WhichOneof(oneof)
    expected = _value_field(meta)
    if received is None:
        raise ValueOutOfRangeError(f"{meta.path}: the request carries no value (expected {expected})")
    if received != expected:
        raise ValueOutOfRangeError(
            f"{meta.path} is a {meta.datatype} signal: expected a {expected} value, got {received}"
        )
    if received in _ARRAY_MEMBERS:
        return tuple(getattr(message, received).values)
    value: Value = getattr(message, received)
    return value


def _set_member(message: Any, field: str, value: Value) -> None:
    """Set the oneof member ``field`` of a v1 ``Datapoint`` or v2 ``Value`` (an array's elements for arrays)."""
    if isinstance(value, tuple):
        array = getattr(message, field)
        array.SetInParent()
        array.values.extend(value)
    else:
        setattr(message, field, value)


def value_from_v2(meta: SignalMetadata, value: v2.Value) -> Value:
    """The Python value of a v2 ``Value`` for the signal described by ``meta``.

    Raises:
        ValueOutOfRangeError: no value, or a oneof member that does not match the signal's datatype.
    """
    return _typed_value(meta, value, "typed_value")


def value_from_v1(meta: SignalMetadata, datapoint: v1.Datapoint) -> Value:
    """The Python value of a v1 ``Datapoint`` for the signal described by ``meta``.

    Raises:
        ValueOutOfRangeError: no value, or a oneof member that does not match the signal's datatype.
    """
    return _typed_value(meta, datapoint, "value")


def value_to_v2(datatype: str, value: Value, target: v2.Value | None = None) -> v2.Value:
    """A Python value as the v2 ``Value`` member of ``datatype`` (filled into ``target`` when given)."""
    message = v2.Value() if target is None else target
    _set_member(message, VALUE_FIELDS[datatype], value)
    return message


# --- datapoints ------------------------------------------------------------------------------------------------
def fill_datapoint_v2(target: v2.Datapoint, field: str, datapoint: Datapoint) -> None:
    """Fill a v2 ``Datapoint`` in place: the subscription hot path (no intermediate messages).

    Args:
        target: the message to fill (a map entry of a subscribe response).
        field: the ``Value`` member of the signal's datatype (:data:`VALUE_FIELDS`).
        datapoint: the broker's datapoint.
    """
    value, timestamp, status = datapoint
    if timestamp is not None:
        target.timestamp.seconds, target.timestamp.nanos = split_seconds(timestamp)
    if value is not None and status is Status.VALID:
        if field in _ARRAY_MEMBERS:
            _set_member(target.value, field, value)
        else:
            setattr(target.value, field, value)


def datapoint_to_v2(datatype: str, datapoint: Datapoint) -> v2.Datapoint:
    """The broker's datapoint as a v2 ``Datapoint`` (no value unless the status is ``VALID``)."""
    message = v2.Datapoint()
    fill_datapoint_v2(message, VALUE_FIELDS[datatype], datapoint)
    return message


def datapoint_to_v1(datatype: str, datapoint: Datapoint) -> v1.Datapoint:
    """The broker's datapoint as a v1 ``Datapoint`` (no value unless the status is ``VALID``)."""
    message = v1.Datapoint()
    value, timestamp, status = datapoint
    if timestamp is not None:
        timestamp_to_proto(timestamp, message.timestamp)
    if value is not None and status is Status.VALID:
        _set_member(message, VALUE_FIELDS[datatype], value)
    return message


# --- metadata --------------------------------------------------------------------------------------------------
def _bound(datatype: str, bound: float) -> Value:
    """A min/max as the (element) datatype's Python type: the profile stores bounds as floats."""
    if datatype.removesuffix("[]") in INTEGER_RANGES:
        return int(bound)
    return float(bound)


def metadata_to_v2(meta: SignalMetadata) -> v2.Metadata:
    """A signal's metadata as a v2 ``Metadata``: min, max and allowed values typed like the signal.

    For an array datatype, min and max are values of the element datatype and the allowed values the array of
    accepted elements (VSS restricts each element).
    """
    message = v2.Metadata(
        path=meta.path,
        id=meta.id,
        data_type=DATA_TYPES_V2[meta.datatype],
        entry_type=ENTRY_TYPES_V2[meta.kind],
        description=meta.description,
        comment=meta.comment or "",
        deprecation=meta.deprecation or "",
        unit=meta.unit or "",
    )
    element = meta.datatype.removesuffix("[]")
    if meta.min is not None:
        value_to_v2(element, _bound(element, meta.min), message.min)
    if meta.max is not None:
        value_to_v2(element, _bound(element, meta.max), message.max)
    if meta.allowed is not None:
        array = getattr(message.allowed_values, _ARRAY_FIELDS[VALUE_FIELDS[element]])
        array.values.extend(meta.allowed)
    return message


def _restriction_v1(meta: SignalMetadata) -> v1.ValueRestriction | None:
    if meta.min is None and meta.max is None and meta.allowed is None:
        return None
    restriction = v1.ValueRestriction()
    element = meta.datatype.removesuffix("[]")
    field = VALUE_FIELDS[element]
    member: Any
    if field == "string":
        member = restriction.string
    elif field in ("int32", "int64"):
        member = restriction.signed
    elif field in ("uint32", "uint64"):
        member = restriction.unsigned
    elif field in ("float", "double"):
        member = restriction.floating_point
    else:  # booleans have no restriction in v1
        return None
    if field != "string":
        if meta.min is not None:
            member.min = _bound(element, meta.min)
        if meta.max is not None:
            member.max = _bound(element, meta.max)
    if meta.allowed is not None:
        member.allowed_values.extend(meta.allowed)
    else:
        member.SetInParent()
    return restriction


def metadata_to_v1(meta: SignalMetadata) -> v1.Metadata:
    """A signal's metadata as a v1 ``Metadata`` with its value restriction and entry-specific member."""
    message = v1.Metadata(
        data_type=DATA_TYPES_V1[meta.datatype],
        entry_type=ENTRY_TYPES_V1[meta.kind],
        description=meta.description,
    )
    if meta.unit is not None:
        message.unit = meta.unit
    if meta.comment is not None:
        message.comment = meta.comment
    if meta.deprecation is not None:
        message.deprecation = meta.deprecation
    restriction = _restriction_v1(meta)
    if restriction is not None:
        message.value_restriction.CopyFrom(restriction)
    getattr(message, meta.kind).SetInParent()
    return message
