"""The ``kuksa.val.v1.VAL`` servicer: GetServerInfo, Get, Set and Subscribe over the broker.

v1 reports most per-entry problems inside the response (``DataEntryError`` with an HTTP-like code) rather than
as a call status, as the KUKSA databroker does; clients such as kuksa-client read them from there.

Invariants:

* Which ``DataEntry`` fields a Get or Subscribe fills is the union of the request's ``view`` and ``fields``
  (``VIEW_UNSPECIFIED`` without fields means the current value; ``FIELD_UNSPECIFIED`` means everything).
* A path in Get or Subscribe may be a signal, a branch or a pattern with ``*``/``**``.
* Set checks every entry before changing anything: with any per-entry error nothing is applied. Metadata fields
  cannot be set (the whole call fails with ``UNIMPLEMENTED`` naming the path and field, never a silent success). Then actuator
  targets go to the broker's actuation (returning once the providers accepted them) and current values are
  published. A current value for a signal a provider owns (the HAL owns the signals it decodes) is refused (409);
  an unclaimed signal takes it from any caller allowed to provide it.
* Subscribe to ``FIELD_ACTUATOR_TARGET`` follows the actuators' targets (a broker target subscription); an entry
  asking for the value too gets both subscriptions, merged into one response stream, both closed when the call
  ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from typing import Any, TypeAlias

import grpc

from sdv import wire as convert
from sdv._proto.kuksa.val.v1 import types_pb2, val_pb2, val_pb2_grpc
from sdv.api.calls import caller
from sdv.api.config import ApiConfig
from sdv.api.encoded import EntryCache
from sdv.api.errors import bounded_message, grpc_errors, http_code
from sdv.api.val_v2 import SERVER_NAME
from sdv.broker import Broker, Subscription
from sdv.broker.access import Action
from sdv.errors import (
    AccessDenied,
    ReadOnlyError,
    SdvError,
    UnknownSignalError,
    UnsupportedRequestError,
    ValueOutOfRangeError,
)
from sdv.types.datatypes import Value
from sdv.types.signals import Datapoint, SignalMetadata
from sdv.version import __version__

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


_WRITABLE: frozenset[Field] = frozenset(
    {types_pb2.FIELD_PATH, types_pb2.FIELD_VALUE, types_pb2.FIELD_ACTUATOR_TARGET}
)


def _refuse_metadata(path: str, fields: set[Field]) -> None:
    """Refuse a Set of anything but values and targets: metadata comes from the profile and the catalogue.

    Raises:
        UnsupportedRequestError: naming the path and the fields (gRPC ``UNIMPLEMENTED``); nothing is applied.
    """
    refused = sorted(fields - _WRITABLE)
    if refused:
        names = ", ".join(types_pb2.Field.Name(field) for field in refused)
        raise UnsupportedRequestError(
            f"{path}: {names} cannot be set; metadata is fixed by the profile and the VSS catalogue "
            "(only FIELD_VALUE and FIELD_ACTUATOR_TARGET are written)"
        )


def _entry_error(path: str, error: SdvError) -> types_pb2.DataEntryError:
    code, reason = http_code(error)
    return types_pb2.DataEntryError(
        path=path, error=types_pb2.Error(code=code, reason=reason, message=bounded_message(str(error)))
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
        self._values: EntryCache[str] = EntryCache(functools.partial(_update_entry, False))
        self._targets: EntryCache[str] = EntryCache(functools.partial(_update_entry, True))

    def _entry(self, meta: SignalMetadata, fields: frozenset[Field]) -> types_pb2.DataEntry:
        entry = types_pb2.DataEntry(path=meta.path)
        if types_pb2.FIELD_VALUE in fields:
            entry.value.CopyFrom(
                convert.datapoint_to_v1(meta.datatype, self._broker.get(meta.path, access=caller()))
            )
        if types_pb2.FIELD_ACTUATOR_TARGET in fields and meta.kind == "actuator":
            entry.actuator_target.CopyFrom(
                convert.datapoint_to_v1(meta.datatype, self._broker.target(meta.path, access=caller()))
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
        return self._broker.list_metadata(path, access=caller())

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
        self._broker.check_request_size(len(request.entries), "entries")
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
        self._broker.check_request_size(len(request.updates), "updates")
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
                if entry.HasField("metadata"):
                    fields.add(types_pb2.FIELD_METADATA)
            _refuse_metadata(entry.path, fields)
            try:
                meta = self._broker.metadata(entry.path, access=caller())
                if types_pb2.FIELD_ACTUATOR_TARGET in fields:
                    if meta.kind != "actuator":
                        raise ReadOnlyError(
                            f"{meta.path} is a {meta.kind}; only actuators have a target value"
                        )
                    self._broker.metadata(
                        meta.path, Action.ACTUATE, access=caller()
                    )  # refused before anything is sent
                    targets.append((meta.path, convert.value_from_v1(meta, entry.actuator_target)))
                if types_pb2.FIELD_VALUE in fields:
                    stamp = entry.value.timestamp if entry.value.HasField("timestamp") else None
                    timestamp = convert.timestamp_from_proto(stamp) if stamp is not None else None
                    values.append((meta.path, convert.value_from_v1(meta, entry.value), timestamp))
                    self._broker.check_publisher(meta.path, access=caller())
            except (ReadOnlyError, AccessDenied):
                raise  # as KUKSA: a target for a non-actuator fails the whole call (INVALID_ARGUMENT); so does
                # an entry the caller may not write (PERMISSION_DENIED), as it does for Get
            except SdvError as error:
                response.errors.append(_entry_error(entry.path, error))
        if response.errors:
            response.error.CopyFrom(response.errors[0].error)
            return response
        if targets:
            try:
                await self._broker.actuate(targets, access=caller())
            except SdvError as error:
                response.errors.extend(_entry_error(path, error) for path, _ in targets)
                response.error.CopyFrom(response.errors[0].error)
                return response
        for path, value, timestamp in values:
            self._broker.publish_value(path, value, timestamp, access=caller())
        return response

    @grpc_errors
    async def Subscribe(  # type: ignore[override]  # serialized responses: sdv.api.encoded
        self, request: val_pb2.SubscribeRequest, context: _Context
    ) -> AsyncIterator[val_pb2.SubscribeResponse | bytes]:
        """Stream entries as they change: first every entry with the requested fields, then changed values and
        new actuator targets."""
        if not request.entries:
            raise ValueOutOfRangeError("Subscribe needs at least one entry")
        self._broker.check_request_size(len(request.entries), "entries")
        wanted: dict[str, tuple[SignalMetadata, frozenset[Field]]] = {}
        for item in request.entries:
            fields = requested_fields(item.view, item.fields)
            metas = self._expand(item.path)
            asks_target = (
                item.view == types_pb2.VIEW_TARGET_VALUE or types_pb2.FIELD_ACTUATOR_TARGET in item.fields
            )  # named explicitly; VIEW_ALL includes the targets of the actuators there are
            if asks_target and all(meta.kind != "actuator" for meta in metas):
                raise ReadOnlyError(f"{item.path}: only actuators have a target value to subscribe to")
            for meta in metas:
                previous = wanted.get(meta.path)
                wanted[meta.path] = (meta, fields | previous[1] if previous else fields)
        target_paths = [
            path
            for path, (meta, fields) in wanted.items()
            if meta.kind == "actuator" and types_pb2.FIELD_ACTUATOR_TARGET in fields
        ]
        targeted = set(target_paths)
        value_paths = [
            path
            for path, (_, fields) in wanted.items()
            if types_pb2.FIELD_VALUE in fields or path not in targeted
        ]
        subscriptions: list[tuple[Subscription, bool]] = []
        try:
            if value_paths:
                subscriptions.append((self._broker.subscribe(value_paths, access=caller()), False))
            if target_paths:
                subscriptions.append(
                    (self._broker.subscribe(target_paths, targets=True, access=caller()), True)
                )
            for subscription, _ in subscriptions:
                await anext(subscription)  # the current datapoints: the first response reads them all
            first = val_pb2.SubscribeResponse()
            for meta, fields in wanted.values():
                update = first.updates.add()
                update.entry.CopyFrom(self._entry(meta, fields))
                update.fields.extend(sorted(fields))
            yield first
            datatypes = {path: meta.datatype for path, (meta, _) in wanted.items()}
            values = {
                path: datatype
                for path, datatype in datatypes.items()
                if types_pb2.FIELD_VALUE in wanted[path][1]
            }
            async with contextlib.aclosing(_merged(subscriptions)) as batches:
                async for is_target, batch in batches:
                    if is_target:
                        yield self._targets.response(batch, datatypes)
                        continue
                    changed = {path: datapoint for path, datapoint in batch.items() if path in values}
                    if changed:
                        yield self._values.response(changed, values)
        finally:
            for subscription, _ in subscriptions:
                subscription.close()

    async def StreamedUpdate(
        self, request_iterator: AsyncIterator[val_pb2.StreamedUpdateRequest], context: _Context
    ) -> AsyncIterator[val_pb2.StreamedUpdateResponse]:
        """Not served: use v2 ``OpenProviderStream`` or ``PublishValue``."""
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "StreamedUpdate is not served; use kuksa.val.v2 OpenProviderStream"
        )
        yield val_pb2.StreamedUpdateResponse()  # pragma: no cover - abort raises


def _update_entry(target: bool, path: str, datatype: str, datapoint: Datapoint) -> bytes:
    """The serialized one-update response of a changed value (or actuator target)."""
    response = val_pb2.SubscribeResponse()
    update = response.updates.add()
    update.entry.path = path
    member = update.entry.actuator_target if target else update.entry.value
    member.CopyFrom(convert.datapoint_to_v1(datatype, datapoint))
    update.fields.append(types_pb2.FIELD_ACTUATOR_TARGET if target else types_pb2.FIELD_VALUE)
    return response.SerializeToString()


async def _merged(
    subscriptions: list[tuple[Subscription, bool]],
) -> AsyncGenerator[tuple[bool, dict[str, Datapoint]]]:
    """The batches of several subscriptions as one stream, each with whether it holds targets; ends with any.

    Each subscription is read by a task into a queue of one item, so a slow reader leaves the batching (latest
    value per signal) to the subscriptions. The tasks are cancelled when the stream is closed.
    """
    if len(subscriptions) == 1:
        subscription, is_target = subscriptions[0]
        async for batch in subscription:
            yield is_target, batch
        return
    queue: asyncio.Queue[tuple[bool, dict[str, Datapoint]] | BaseException | None] = asyncio.Queue(maxsize=1)

    async def pump(subscription: Subscription, is_target: bool) -> None:
        try:
            async for batch in subscription:
                await queue.put((is_target, batch))
        except Exception as error:  # handed to the reader, which raises it
            await queue.put(error)
            return
        await queue.put(None)

    tasks = [asyncio.create_task(pump(subscription, is_target)) for subscription, is_target in subscriptions]
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
