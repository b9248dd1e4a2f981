"""The ``kuksa.val.v2.VAL`` servicer: every RPC of the v2 API over the broker.

Invariants:

* Every handler is wrapped by :func:`sdv.api.errors.grpc_errors`; the status codes are the ones
  ``docs/api.md`` lists per RPC.
* A request naming several signals is resolved completely (every signal known, every value of the right type)
  before anything is read, published or actuated.
* A subscription sends one response per broker batch: the first holds every subscribed signal, the next ones the
  signals that changed (latest value each). Its broker subscription is closed when the call ends, however it
  ends. Each change is serialized once for all subscribers (:class:`~sdv.api.encoded.EntryCache`), so the
  servicer is registered with :func:`~sdv.api.encoded.add_servicer`.
* Actuation returns only after the owning provider accepted the request (for the HAL: the frame was sent).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import grpc

from sdv import wire as convert
from sdv._proto.kuksa.val.v2 import types_pb2, val_pb2, val_pb2_grpc
from sdv.api.calls import caller
from sdv.api.config import ApiConfig
from sdv.api.encoded import EntryCache
from sdv.api.errors import grpc_errors
from sdv.api.provider_stream import ProviderSession, resolve_signal
from sdv.broker import Broker
from sdv.broker.ownership import Owner
from sdv.errors import ValueOutOfRangeError
from sdv.types.datatypes import Value
from sdv.types.signals import Datapoint, SignalMetadata
from sdv.version import __version__

__all__ = ["SERVER_NAME", "ValV2Servicer"]

_LOG = logging.getLogger(__name__)
SERVER_NAME = "sdv"
_Context = grpc.aio.ServicerContext[Any, Any]


class ValV2Servicer(val_pb2_grpc.VALServicer):
    """Serves ``kuksa.val.v2.VAL`` from a broker.

    Args:
        broker: the signals served.
        config: limits and timeouts.
    """

    def __init__(self, broker: Broker, config: ApiConfig | None = None) -> None:
        self._broker = broker
        self._config = config or ApiConfig()
        self._by_path = EntryCache(_entry_by_path)
        self._by_id: EntryCache[tuple[int, str]] = EntryCache(_entry_by_id)

    # --- reading -------------------------------------------------------------------------------------------
    @grpc_errors
    async def GetValue(self, request: val_pb2.GetValueRequest, context: _Context) -> val_pb2.GetValueResponse:
        """The current datapoint of one signal."""
        meta = resolve_signal(self._broker, request.signal_id)
        datapoint = self._broker.get(meta.path, access=caller())
        return val_pb2.GetValueResponse(data_point=convert.datapoint_to_v2(meta.datatype, datapoint))

    @grpc_errors
    async def GetValues(
        self, request: val_pb2.GetValuesRequest, context: _Context
    ) -> val_pb2.GetValuesResponse:
        """The current datapoints of several signals, in request order."""
        if not request.signal_ids:
            raise ValueOutOfRangeError("GetValues needs at least one signal")
        self._broker.check_request_size(len(request.signal_ids))
        metas = [resolve_signal(self._broker, signal_id) for signal_id in request.signal_ids]
        return val_pb2.GetValuesResponse(
            data_points=[
                convert.datapoint_to_v2(meta.datatype, self._broker.get(meta.path, access=caller()))
                for meta in metas
            ]
        )

    @grpc_errors
    async def ListMetadata(
        self, request: val_pb2.ListMetadataRequest, context: _Context
    ) -> val_pb2.ListMetadataResponse:
        """Metadata of the signals under a branch or matching a pattern (all for an empty root)."""
        metas = self._broker.list_metadata(request.root, access=caller())
        return val_pb2.ListMetadataResponse(metadata=[convert.metadata_to_v2(meta) for meta in metas])

    @grpc_errors
    async def GetServerInfo(
        self, request: val_pb2.GetServerInfoRequest, context: _Context
    ) -> val_pb2.GetServerInfoResponse:
        """Name and version of the server."""
        return val_pb2.GetServerInfoResponse(name=SERVER_NAME, version=__version__)

    # --- subscriptions -------------------------------------------------------------------------------------
    def _check_subscribe(self, buffer_size: int, filter_: types_pb2.Filter) -> tuple[float, float | None]:
        """The minimum interval (ms) and the deadline (monotonic seconds) a subscribe request asks for."""
        if buffer_size > self._broker.limits.max_buffer_size:
            raise ValueOutOfRangeError(
                f"buffer_size {buffer_size} exceeds the maximum {self._broker.limits.max_buffer_size}"
            )
        deadline = time.monotonic() + filter_.duration_ms / 1000 if filter_.duration_ms else None
        return float(filter_.min_sample_interval.interval_ms), deadline

    async def _batches(
        self, metas: Sequence[SignalMetadata], interval_ms: float, deadline: float | None
    ) -> AsyncIterator[dict[str, Datapoint]]:
        subscription = self._broker.subscribe(
            [meta.path for meta in metas], min_interval_ms=interval_ms, access=caller()
        )
        try:
            iterator = aiter(subscription)
            while True:
                if deadline is None:
                    batch = await anext(iterator, None)
                else:
                    batch = await _next_before(iterator, deadline)
                if batch is None:
                    return
                yield batch
        finally:
            subscription.close()

    @grpc_errors
    async def Subscribe(  # type: ignore[override]  # serialized responses: sdv.api.encoded
        self, request: val_pb2.SubscribeRequest, context: _Context
    ) -> AsyncIterator[bytes]:
        """Stream the subscribed signals by path, one response per broker batch."""
        interval_ms, deadline = self._check_subscribe(request.buffer_size, request.filter)
        metas = [self._broker.metadata(path, access=caller()) for path in request.signal_paths]
        fields = {meta.path: convert.VALUE_FIELDS[meta.datatype] for meta in metas}
        response = self._by_path.response
        async for batch in self._batches(metas, interval_ms, deadline):
            yield response(batch, fields)

    @grpc_errors
    async def SubscribeById(  # type: ignore[override]  # serialized responses: sdv.api.encoded
        self, request: val_pb2.SubscribeByIdRequest, context: _Context
    ) -> AsyncIterator[bytes]:
        """Stream the subscribed signals by id, one response per broker batch."""
        interval_ms, deadline = self._check_subscribe(request.buffer_size, request.filter)
        metas = [self._broker.metadata_by_id(signal_id, access=caller()) for signal_id in request.signal_ids]
        keys = {meta.path: (meta.id, convert.VALUE_FIELDS[meta.datatype]) for meta in metas}
        response = self._by_id.response
        async for batch in self._batches(metas, interval_ms, deadline):
            yield response(batch, keys)

    # --- actuation -----------------------------------------------------------------------------------------
    def _actuation(self, request: val_pb2.ActuateRequest) -> tuple[str, Value]:
        meta = resolve_signal(self._broker, request.signal_id)
        return meta.path, convert.value_from_v2(meta, request.value)

    @grpc_errors
    async def Actuate(self, request: val_pb2.ActuateRequest, context: _Context) -> val_pb2.ActuateResponse:
        """Request a value for one actuator; returns once its provider accepted it."""
        await self._broker.actuate([self._actuation(request)], access=caller())
        return val_pb2.ActuateResponse()

    @grpc_errors
    async def ActuateStream(
        self, request_iterator: AsyncIterator[val_pb2.ActuateRequest], context: _Context
    ) -> val_pb2.ActuateResponse:
        """Carry out a stream of actuation requests one by one; the first refused one ends the call."""
        async for request in request_iterator:
            await self._broker.actuate([self._actuation(request)], access=caller())
        return val_pb2.ActuateResponse()

    @grpc_errors
    async def BatchActuate(
        self, request: val_pb2.BatchActuateRequest, context: _Context
    ) -> val_pb2.BatchActuateResponse:
        """Request values for several actuators: all are checked before any is sent."""
        await self._broker.actuate(
            [self._actuation(item) for item in request.actuate_requests], access=caller()
        )
        return val_pb2.BatchActuateResponse()

    # --- providing -----------------------------------------------------------------------------------------
    @grpc_errors
    async def PublishValue(
        self, request: val_pb2.PublishValueRequest, context: _Context
    ) -> val_pb2.PublishValueResponse:
        """Set the current value of one signal (a datapoint without value marks it not available).

        A signal a provider owns (the HAL owns the signals it decodes) is refused with ``ALREADY_EXISTS``.
        """
        meta = resolve_signal(self._broker, request.signal_id)
        publish_datapoint(self._broker, meta, request.data_point)
        return val_pb2.PublishValueResponse()

    @grpc_errors
    async def OpenProviderStream(
        self, request_iterator: AsyncIterator[val_pb2.OpenProviderStreamRequest], context: _Context
    ) -> AsyncIterator[val_pb2.OpenProviderStreamResponse]:
        """Serve one provider: its claims, its published values, and actuation requests sent to it."""
        session = ProviderSession(self._broker, publish_datapoint, context.peer())
        # A half-closed provider's call is only seen to end (cancelled, connection lost) through this callback.
        context.add_done_callback(cast(Any, lambda _context: session.end()))  # stubs want a class instance
        async for response in session.run(request_iterator):
            yield response


def publish_datapoint(
    broker: Broker, meta: SignalMetadata, datapoint: types_pb2.Datapoint, owner: Owner | None = None
) -> None:
    """Publish a provider's datapoint: its value checked against the signal, or "not available" without one.

    Raises:
        UnknownSignalError, ValueOutOfRangeError, AlreadyProvidedError: as the broker's ``publish_value``.
    """
    timestamp = convert.timestamp_from_proto(datapoint.timestamp) if datapoint.HasField("timestamp") else None
    if datapoint.value.WhichOneof("typed_value") is None:
        broker.publish_not_available(meta.path, timestamp, owner=owner, access=caller())
        return
    broker.publish_value(
        meta.path, convert.value_from_v2(meta, datapoint.value), timestamp, owner=owner, access=caller()
    )


def _entry_by_path(path: str, field: str, datapoint: Datapoint) -> bytes:
    response = val_pb2.SubscribeResponse()
    convert.fill_datapoint_v2(response.entries[path], field, datapoint)
    return response.SerializeToString()


def _entry_by_id(path: str, key: tuple[int, str], datapoint: Datapoint) -> bytes:
    response = val_pb2.SubscribeByIdResponse()
    convert.fill_datapoint_v2(response.entries[key[0]], key[1], datapoint)
    return response.SerializeToString()


async def _next_before(
    iterator: AsyncIterator[dict[str, Datapoint]], deadline: float
) -> dict[str, Datapoint] | None:
    """The next batch, or None once ``deadline`` (monotonic) has passed."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    try:
        return await asyncio.wait_for(anext(iterator), remaining)
    except (TimeoutError, StopAsyncIteration):
        return None
