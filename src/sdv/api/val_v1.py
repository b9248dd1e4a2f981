"""The ``kuksa.val.v1.VAL`` servicer: GetServerInfo, Get, Set and Subscribe over the broker.

v1 reports most per-entry problems inside the response (``DataEntryError`` with an HTTP-like code) rather than
as a call status, as the KUKSA databroker does; clients such as kuksa-client read them from there.

Invariants:

* Which ``DataEntry`` fields a Get or Subscribe fills is the union of the request's ``view`` and ``fields``
  (``VIEW_UNSPECIFIED`` without fields means the current value; ``FIELD_UNSPECIFIED`` means everything).
* A path in Get or Subscribe may be a signal, a branch or a pattern with ``*``/``**``.
* Set checks every entry before changing anything: with any per-entry error nothing is applied. Then actuator
  targets go to the broker's actuation (returning once the providers accepted them) and current values are
  published.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any, TypeAlias

import grpc

from sdv import __version__
from sdv.api import convert
from sdv.api._proto.kuksa.val.v1 import types_pb2, val_pb2, val_pb2_grpc
from sdv.api.config import ApiConfig
from sdv.api.errors import UnsupportedRequestError, grpc_errors, http_code
from sdv.api.val_v2 import SERVER_NAME
from sdv.broker import Broker, SignalMetadata
from sdv.errors import ReadOnlyError, SdvError, UnknownSignalError, ValueOutOfRangeError
from sdv.hal.datatypes import Value

__all__ = ["ValV1Servicer", "requested_fields"]

_LOG = logging.getLogger(__name__)
_Context = grpc.aio.ServicerContext[Any, Any]
Field: TypeAlias = types_pb2.Field.ValueType

_VIEW_FIELDS: dict[int, frozenset[Field]] = {
    types_pb2.VIEW_CURRENT_VALUE: frozenset({types_pb2.FIELD_PATH, types_pb2.FIELD_VALUE}),
    types_pb2.VIEW_TARGET_VALUE: frozenset({types_pb2.FIELD_PATH, types_pb2.FIELD_ACTUATOR_TARGET}),
    types_pb2.VIEW_METADATA: frozenset({types_pb2.FIELD_PATH, types_pb2.FIELD_METADATA}),
    types_pb2.VIEW_FIELDS: frozenset(),
    types_pb2.VIEW_ALL: frozenset(
        {
            types_pb2.FIELD_PATH,
            types_pb2.FIELD_VALUE,
            types_pb2.FIELD_ACTUATOR_TARGET,
            types_pb2.FIELD_METADATA,
        }
    ),
}
_METADATA_FIELDS: dict[Field, str] = {
    types_pb2.FIELD_METADATA_DATA_TYPE: "data_type",
    types_pb2.FIELD_METADATA_DESCRIPTION: "description",
    types_pb2.FIELD_METADATA_ENTRY_TYPE: "entry_type",
    types_pb2.FIELD_METADATA_COMMENT: "comment",
    types_pb2.FIELD_METADATA_DEPRECATION: "deprecation",
    types_pb2.FIELD_METADATA_UNIT: "unit",
    types_pb2.FIELD_METADATA_VALUE_RESTRICTION: "value_restriction",
    types_pb2.FIELD_METADATA_ACTUATOR: "actuator",
    types_pb2.FIELD_METADATA_SENSOR: "sensor",
    types_pb2.FIELD_METADATA_ATTRIBUTE: "attribute",
}


def requested_fields(view: int, fields: Iterable[Field]) -> frozenset[Field]:
    """The ``DataEntry`` fields a view and a list of fields ask for, together.

    Raises:
        ValueOutOfRangeError: an unknown view.
    """
    chosen = set(fields)
    if types_pb2.FIELD_UNSPECIFIED in chosen:
        return _VIEW_FIELDS[types_pb2.VIEW_ALL] | frozenset(_METADATA_FIELDS)
    if view == types_pb2.VIEW_UNSPECIFIED:
        return frozenset(chosen or _VIEW_FIELDS[types_pb2.VIEW_CURRENT_VALUE])
    if view not in _VIEW_FIELDS:
        raise ValueOutOfRangeError(f"unknown view {view}")
    return frozenset(chosen | _VIEW_FIELDS[view])


def _entry_error(path: str, error: SdvError) -> types_pb2.DataEntryError:
    code, reason = http_code(error)
    return types_pb2.DataEntryError(
        path=path, error=types_pb2.Error(code=code, reason=reason, message=str(error))
    )


class ValV1Servicer(val_pb2_grpc.VALServicer):
    """Serves ``kuksa.val.v1.VAL`` from a broker.

    Args:
        broker: the signals served.
        config: limits and timeouts.
    """

    def __init__(self, broker: Broker, config: ApiConfig | None = None) -> None:
        self._broker = broker
        self._config = config or ApiConfig()

    def _entry(self, meta: SignalMetadata, fields: frozenset[Field]) -> types_pb2.DataEntry:
        entry = types_pb2.DataEntry(path=meta.path)
        if types_pb2.FIELD_VALUE in fields:
            entry.value.CopyFrom(convert.datapoint_to_v1(meta.datatype, self._broker.get(meta.path)))
        if types_pb2.FIELD_ACTUATOR_TARGET in fields and meta.kind == "actuator":
            entry.actuator_target.CopyFrom(
                convert.datapoint_to_v1(meta.datatype, self._broker.target(meta.path))
            )
        if types_pb2.FIELD_METADATA in fields:
            entry.metadata.CopyFrom(convert.metadata_to_v1(meta))
        elif wanted := {_METADATA_FIELDS[field] for field in fields if field in _METADATA_FIELDS}:
            for descriptor, value in convert.metadata_to_v1(meta).ListFields():
                if descriptor.name not in wanted:
                    continue
                if descriptor.message_type is not None:
                    getattr(entry.metadata, descriptor.name).CopyFrom(value)
                else:
                    setattr(entry.metadata, descriptor.name, value)
        return entry

    def _expand(self, path: str) -> list[SignalMetadata]:
        if not path:
            raise ValueOutOfRangeError("an entry needs a path")
        return self._broker.list_metadata(path)

    # --- RPCs ----------------------------------------------------------------------------------------------
    @grpc_errors
    async def GetServerInfo(
        self, request: val_pb2.GetServerInfoRequest, context: _Context
    ) -> val_pb2.GetServerInfoResponse:
        """Name and version of the server."""
        return val_pb2.GetServerInfoResponse(name=SERVER_NAME, version=__version__)

    @grpc_errors
    async def Get(self, request: val_pb2.GetRequest, context: _Context) -> val_pb2.GetResponse:
        """Read entries; unknown paths are reported per entry (404) in ``errors``."""
        if not request.entries:
            raise ValueOutOfRangeError("Get needs at least one entry")
        response = val_pb2.GetResponse()
        for item in request.entries:
            fields = requested_fields(item.view, item.fields)
            try:
                metas = self._expand(item.path)
            except (UnknownSignalError, ValueOutOfRangeError) as error:
                response.errors.append(_entry_error(item.path, error))
                continue
            response.entries.extend(self._entry(meta, fields) for meta in metas)
        if response.errors:
            response.error.CopyFrom(response.errors[0].error)
        return response

    @grpc_errors
    async def Set(self, request: val_pb2.SetRequest, context: _Context) -> val_pb2.SetResponse:
        """Write actuator targets (actuation) and current values (publishing); all checked before any applies."""
        targets: list[tuple[str, Value]] = []
        values: list[tuple[str, Value, float | None]] = []
        response = val_pb2.SetResponse()
        for update in request.updates:
            entry = update.entry
            if not entry.path:
                raise ValueOutOfRangeError("every update needs an entry with a path")
            fields = set(update.fields)
            if not fields:  # no fields listed: whatever the entry carries
                if entry.HasField("value"):
                    fields.add(types_pb2.FIELD_VALUE)
                if entry.HasField("actuator_target"):
                    fields.add(types_pb2.FIELD_ACTUATOR_TARGET)
            try:
                meta = self._broker.metadata(entry.path)
                if types_pb2.FIELD_ACTUATOR_TARGET in fields:
                    if meta.kind != "actuator":
                        raise ReadOnlyError(
                            f"{meta.path} is a {meta.kind}; only actuators have a target value"
                        )
                    targets.append((meta.path, convert.value_from_v1(meta, entry.actuator_target)))
                if types_pb2.FIELD_VALUE in fields:
                    stamp = entry.value.timestamp if entry.value.HasField("timestamp") else None
                    timestamp = convert.timestamp_from_proto(stamp) if stamp is not None else None
                    values.append((meta.path, convert.value_from_v1(meta, entry.value), timestamp))
            except ReadOnlyError:
                raise  # as KUKSA: a target for a non-actuator fails the whole call (INVALID_ARGUMENT)
            except SdvError as error:
                response.errors.append(_entry_error(entry.path, error))
        if response.errors:
            response.error.CopyFrom(response.errors[0].error)
            return response
        if targets:
            try:
                await self._broker.actuate(targets)
            except SdvError as error:
                response.errors.extend(_entry_error(path, error) for path, _ in targets)
                response.error.CopyFrom(response.errors[0].error)
                return response
        for path, value, timestamp in values:
            self._broker.publish_value(path, value, timestamp)
        return response

    @grpc_errors
    async def Subscribe(
        self, request: val_pb2.SubscribeRequest, context: _Context
    ) -> AsyncIterator[val_pb2.SubscribeResponse]:
        """Stream entries as they change: first every entry with the requested fields, then changed values."""
        if not request.entries:
            raise ValueOutOfRangeError("Subscribe needs at least one entry")
        wanted: dict[str, tuple[SignalMetadata, frozenset[Field]]] = {}
        for item in request.entries:
            fields = requested_fields(item.view, item.fields)
            if types_pb2.FIELD_ACTUATOR_TARGET in fields:
                raise UnsupportedRequestError(
                    f"{item.path}: subscribing to actuator targets is not supported; subscribe to the value"
                )
            for meta in self._expand(item.path):
                previous = wanted.get(meta.path)
                wanted[meta.path] = (meta, fields | previous[1] if previous else fields)
        subscription = self._broker.subscribe(list(wanted))
        value_only = [types_pb2.FIELD_VALUE]
        first = True
        try:
            async for batch in subscription:
                response = val_pb2.SubscribeResponse()
                for path, datapoint in batch.items():
                    meta, fields = wanted[path]
                    update = response.updates.add()
                    if first:
                        update.entry.CopyFrom(self._entry(meta, fields))
                        update.fields.extend(sorted(fields))
                        continue
                    if types_pb2.FIELD_VALUE not in fields:
                        del response.updates[-1]
                        continue
                    update.entry.path = path
                    update.entry.value.CopyFrom(convert.datapoint_to_v1(meta.datatype, datapoint))
                    update.fields.extend(value_only)
                first = False
                if response.updates:
                    yield response
        finally:
            subscription.close()

    async def StreamedUpdate(
        self, request_iterator: AsyncIterator[val_pb2.StreamedUpdateRequest], context: _Context
    ) -> AsyncIterator[val_pb2.StreamedUpdateResponse]:
        """Not served: use v2 ``OpenProviderStream`` or ``PublishValue``."""
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "StreamedUpdate is not served; use kuksa.val.v2 OpenProviderStream"
        )
        yield val_pb2.StreamedUpdateResponse()  # pragma: no cover - abort raises
