"""Domain ↔ proto conversions of the typed services (``sdv.cockpit.v1``, ``sdv.adas.v1``).

Invariants:

* A ``ClusterState`` field is set only when its signal's datapoint is ``VALID`` and has a value; otherwise it is
  absent, which is how the cockpit service says "not available" (never received, stale, failed E2E check, or not
  mapped by the profile).
* Every ``VehicleDynamics`` field is set: a ``Measurement`` with the datapoint's value (the last one received,
  also when no longer valid; NaN if none), its timestamp and its status as ``Validity``. A field the profile does
  not map is ``NOT_AVAILABLE``.
* The conversions are compiled once per mapping (:class:`ClusterStateBuilder`, :class:`DynamicsBuilder`); per
  batch they only read datapoints and fill messages.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from sdv._proto.sdv.adas.v1 import adas_pb2
from sdv._proto.sdv.cockpit.v1 import cockpit_pb2
from sdv.types.datatypes import Scalar
from sdv.types.service_fields import ADAS_FIELDS, COCKPIT_FIELDS
from sdv.types.signals import Datapoint
from sdv.types.status import Status
from sdv.wire import timestamp_to_proto

__all__ = ["VALIDITY", "ClusterStateBuilder", "DynamicsBuilder", "measurement", "min_interval_ms"]

VALIDITY: Mapping[Status, adas_pb2.Validity.ValueType] = {
    Status.VALID: adas_pb2.VALID,
    Status.STALE: adas_pb2.STALE,
    Status.E2E_FAILED: adas_pb2.E2E_FAILED,
    Status.NOT_AVAILABLE: adas_pb2.NOT_AVAILABLE,
}
"""The broker's datapoint status → the ADAS ``Validity``."""


def min_interval_ms(max_rate_hz: int) -> float:
    """The broker subscription interval for a stream limited to ``max_rate_hz`` messages a second (0: none)."""
    return 1000.0 / max_rate_hz if max_rate_hz > 0 else 0.0


def _converter(field: FieldDescriptor) -> Callable[[Any], Scalar]:
    if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return bool
    if field.cpp_type in (FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE):
        return float
    return int


class ClusterStateBuilder:
    """Builds ``ClusterState`` messages from datapoints, for one ``services.cockpit`` mapping.

    Args:
        mapping: field name → VSS path (fields of :data:`~sdv.types.service_fields.COCKPIT_FIELDS`).
    """

    def __init__(self, mapping: Mapping[str, str]) -> None:
        fields = cockpit_pb2.ClusterState.DESCRIPTOR.fields_by_name
        unknown = sorted(set(mapping) - set(COCKPIT_FIELDS))
        if unknown:
            raise ValueError(f"not fields of the cockpit service: {', '.join(unknown)}")
        self.mapping = dict(mapping)
        self.paths: tuple[str, ...] = tuple(dict.fromkeys(mapping.values()))
        self._fields = tuple((name, path, _converter(fields[name])) for name, path in self.mapping.items())

    def build(
        self, datapoints: Mapping[str, Datapoint], now: float | None = None
    ) -> cockpit_pb2.ClusterState:
        """The cluster state of ``datapoints`` (path → datapoint; missing paths are not available)."""
        state = cockpit_pb2.ClusterState()
        for name, path, convert in self._fields:
            datapoint = datapoints.get(path)
            if datapoint is not None and datapoint.status is Status.VALID and datapoint.value is not None:
                setattr(state, name, convert(datapoint.value))
        timestamp_to_proto(time.time() if now is None else now, state.timestamp)
        return state


def measurement(datapoint: Datapoint, target: adas_pb2.Measurement | None = None) -> adas_pb2.Measurement:
    """A datapoint as an ADAS ``Measurement`` (filled into ``target`` when given)."""
    result = adas_pb2.Measurement() if target is None else target
    value = datapoint.value
    result.value = math.nan if value is None or isinstance(value, tuple) else float(value)
    if datapoint.timestamp is not None:
        timestamp_to_proto(datapoint.timestamp, result.timestamp)
    result.validity = VALIDITY[datapoint.status]
    return result


class DynamicsBuilder:
    """Builds ``VehicleDynamics`` messages from datapoints, for one ``services.adas`` mapping.

    Args:
        mapping: field name → VSS path (fields of :data:`~sdv.types.service_fields.ADAS_FIELDS`).
    """

    def __init__(self, mapping: Mapping[str, str]) -> None:
        unknown = sorted(set(mapping) - set(ADAS_FIELDS))
        if unknown:
            raise ValueError(f"not fields of the ADAS service: {', '.join(unknown)}")
        self.mapping = dict(mapping)
        self.paths: tuple[str, ...] = tuple(dict.fromkeys(mapping.values()))
        self._unmapped = tuple(name for name in ADAS_FIELDS if name not in self.mapping)

    def build(self, datapoints: Mapping[str, Datapoint]) -> adas_pb2.VehicleDynamics:
        """The dynamics of ``datapoints`` (path → datapoint; missing paths are not available)."""
        dynamics = adas_pb2.VehicleDynamics()
        for name, path in self.mapping.items():
            datapoint = datapoints.get(path)
            target = getattr(dynamics, name)
            if datapoint is None:
                target.value, target.validity = math.nan, adas_pb2.NOT_AVAILABLE
            else:
                measurement(datapoint, target)
        for name in self._unmapped:
            target = getattr(dynamics, name)
            target.value, target.validity = math.nan, adas_pb2.NOT_AVAILABLE
        return dynamics
