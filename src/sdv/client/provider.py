"""Being a provider: one ``kuksa.val.v2`` ``OpenProviderStream`` that claims signals and actuators, publishes
values, and answers the actuations the broker forwards.

Invariants:

* A claim returns once the server accepted it, or raises the refusal (``ALREADY_EXISTS`` naming the holder is
  :class:`~sdv.errors.AlreadyProvidedError`); a refused claim ends the stream, as in KUKSA.
* Every forwarded actuation is answered with one ``BatchActuateStreamResponse`` per signal: success when the
  handler returned, the handler's error message when it raised.
* The server ends every claim when the stream ends: :meth:`ProviderStream.close`, or the process going away.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import grpc

from sdv._proto.kuksa.val.v2 import types_pb2, val_pb2
from sdv.client.convert import untyped_value_from_v2
from sdv.client.errors import translate
from sdv.errors import SdvError, ValueOutOfRangeError
from sdv.types.datatypes import Value, coerce
from sdv.types.signals import SignalMetadata
from sdv.wire import value_to_v2

if TYPE_CHECKING:
    from sdv._proto.kuksa.val.v2.val_pb2_grpc import VALAsyncStub

__all__ = ["ActuationHandler", "ProviderStream"]

_LOG = logging.getLogger(__name__)

ActuationHandler = Callable[[str, Value], Awaitable[None]]
"""Carries out one forwarded actuation (path, value); raising refuses it with the error's message."""

_Response = val_pb2.OpenProviderStreamResponse


class ProviderStream:
    """One provider stream; use as ``async with ProviderStream(stub, target, metadata) as provider:``.

    Args:
        stub: a connected ``kuksa.val.v2`` stub.
        target: the server address, for messages.
        metadata: resolves a path to its metadata (id and datatype), e.g. ``VehicleClient.metadata``.
    """

    def __init__(
        self,
        stub: VALAsyncStub,
        target: str,
        metadata: Callable[[str], Awaitable[SignalMetadata]],
    ) -> None:
        self._stub = stub
        self._target = target
        self._metadata = metadata
        self._outbox: asyncio.Queue[val_pb2.OpenProviderStreamRequest | None] = asyncio.Queue()
        self._claims: asyncio.Queue[asyncio.Future[None]] = asyncio.Queue()
        self._handlers: dict[int, tuple[str, ActuationHandler]] = {}
        self._by_path: dict[str, SignalMetadata] = {}
        self._request_ids = itertools.count(1)
        self._call: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.ended: SdvError | None = None
        """Why the stream ended (a refused claim, the server gone), once it did."""
        self.refused: dict[str, str] = {}
        """Published values the server refused: path → its message (KUKSA answers only refusals)."""

    async def __aenter__(self) -> Self:
        self._call = self._stub.OpenProviderStream(self._requests())
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """End the stream: the server releases every claim of it."""
        await self._outbox.put(None)
        if self._call is not None:
            self._call.cancel()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for task in list(self._tasks):
            task.cancel()

    async def _requests(self) -> AsyncIterator[val_pb2.OpenProviderStreamRequest]:
        while (request := await self._outbox.get()) is not None:
            yield request

    async def _resolve(self, paths: Sequence[str]) -> list[SignalMetadata]:
        metas = [await self._metadata(path) for path in paths]
        self._by_path.update({meta.path: meta for meta in metas})
        return metas

    async def _claim(self, request: val_pb2.OpenProviderStreamRequest) -> None:
        if self.ended is not None:
            raise self.ended
        accepted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._claims.put(accepted)
        await self._outbox.put(request)
        await accepted

    async def claim_signals(self, paths: Sequence[str]) -> None:
        """Become the one publisher of ``paths``; returns once the server accepted the claim.

        Raises:
            AlreadyProvidedError: another provider (or the HAL) holds one of them; the stream ends.
            UnknownSignalError, AccessDenied: as their names say; the stream ends.
        """
        metas = await self._resolve(paths)
        request = val_pb2.ProvideSignalRequest(
            signals_sample_intervals={meta.id: types_pb2.SampleInterval() for meta in metas}
        )
        await self._claim(val_pb2.OpenProviderStreamRequest(provide_signal_request=request))

    async def claim_actuators(self, paths: Sequence[str], handler: ActuationHandler) -> None:
        """Become the one provider of the actuators at ``paths``: ``handler`` carries out each request.

        Raises:
            AlreadyProvidedError: another provider (or the HAL) provides one of them; the stream ends.
            ReadOnlyError: a path is not an actuator (the server answers INVALID_ARGUMENT); the stream ends.
        """
        metas = await self._resolve(paths)
        for meta in metas:
            self._handlers[meta.id] = (meta.path, handler)
        request = val_pb2.ProvideActuationRequest(
            actuator_identifiers=[types_pb2.SignalID(path=meta.path) for meta in metas]
        )
        await self._claim(val_pb2.OpenProviderStreamRequest(provide_actuation_request=request))

    async def publish(self, values: Mapping[str, Value]) -> None:
        """Publish current values in one ``PublishValuesRequest`` (refusals arrive later, in :attr:`refused`).

        Raises:
            ValueOutOfRangeError: a value that is not of its signal's datatype (nothing is sent).
        """
        if self.ended is not None:
            raise self.ended
        request = val_pb2.PublishValuesRequest(request_id=next(self._request_ids))
        for path, value in values.items():
            meta = self._by_path.get(path) or (await self._resolve([path]))[0]
            try:
                typed = coerce(meta.datatype, value)
            except ValueError as error:
                raise ValueOutOfRangeError(f"{path}: {error}") from None
            value_to_v2(meta.datatype, typed, request.data_points[meta.id].value)
        await self._outbox.put(val_pb2.OpenProviderStreamRequest(publish_values_request=request))

    async def _read(self) -> None:
        try:
            async for response in self._call:
                self._dispatch(response)
            error: SdvError = SdvError(f"{self._target} ended the provider stream")
        except grpc.aio.AioRpcError as failure:
            error = translate(failure, self._target, reached_server=True)
        except asyncio.CancelledError:
            error = SdvError("the provider stream was closed")
        self.ended = error
        while not self._claims.empty():
            pending = self._claims.get_nowait()
            if not pending.done():
                pending.set_exception(error)

    def _dispatch(self, response: _Response) -> None:
        action = response.WhichOneof("action")
        if action in ("provide_signal_response", "provide_actuation_response"):
            if not self._claims.empty():
                self._claims.get_nowait().set_result(None)
        elif action == "batch_actuate_stream_request":
            for item in response.batch_actuate_stream_request.actuate_requests:
                task = asyncio.create_task(self._carry_out(item))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        elif action == "publish_values_response":
            paths = {meta.id: meta.path for meta in self._by_path.values()}
            for signal_id, error in response.publish_values_response.status.items():
                self.refused[paths.get(signal_id, str(signal_id))] = error.message
                _LOG.warning("the server refused a value for %s: %s", paths.get(signal_id), error.message)

    async def _carry_out(self, item: val_pb2.ActuateRequest) -> None:
        signal_id = item.signal_id.id
        path, handler = self._handlers.get(signal_id, (item.signal_id.path, None))
        answer = val_pb2.BatchActuateStreamResponse(signal_id=types_pb2.SignalID(id=signal_id))
        value = untyped_value_from_v2(item.value)
        if handler is None or value is None:
            answer.error.code = types_pb2.ERROR_CODE_INVALID_ARGUMENT
            answer.error.message = f"{path}: not provided by this stream, or no value"
        else:
            try:
                await handler(path, value)
                answer.error.code = types_pb2.ERROR_CODE_OK
            except Exception as error:
                answer.error.code = types_pb2.ERROR_CODE_INVALID_ARGUMENT
                answer.error.message = str(error) or type(error).__name__
        await self._outbox.put(val_pb2.OpenProviderStreamRequest(batch_actuate_stream_response=answer))
