"""One provider's ``OpenProviderStream`` call: claims, published values, and actuation requests sent back to it.

Invariants:

* Each stream is one :class:`~sdv.broker.ownership.Owner` (a client). Claiming actuators makes it their one
  provider; every claim is released when the call ends, however it ends (cancelled, error, the provider's
  process killed: gRPC ends the call when the connection drops). A provider of actuators that half-closes its
  side (sends nothing more) keeps the call and its claims, as in the KUKSA databroker, because it still
  receives actuations (kuksa-client's ``subscribe_target_values`` does so); any other half-closed stream ends
  with ``OK``.
* An actuation routed to the session is sent as one ``BatchActuateStreamRequest`` and returns only when the
  provider answered a ``BatchActuateStreamResponse`` for every requested signal; an answer with an error or the
  stream ending first fails the actuation, and the broker bounds the wait (``Limits.actuation_timeout_s``). With
  ``Limits.await_provider_answer`` false it returns once the request is queued on the stream.
* gRPC accepts every message written to the stream and buffers it until the provider reads, so a provider that
  stops reading would make the server hold every request sent to it. With ``await_provider_answer`` a provider
  has at most ``Limits.max_pending_actuations`` requests it has not answered (timed-out ones count until
  answered or the stream ends); beyond that an actuation is refused at once (``LimitExceededError``,
  ``RESOURCE_EXHAUSTED``). Answers for a signal settle its requests in the order they were sent.
* ``ProvideSignalRequest`` makes the session the one publisher of those signals until the stream ends; a signal
  another owner holds (the HAL owns the signals it decodes) ends the stream with ``ALREADY_EXISTS`` naming the
  holder's kind.
* Published values are checked one by one; only refused ones are answered (a ``PublishValuesResponse`` with an
  error per signal id), as KUKSA does. A refused claim ends the stream with its status code.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from sdv._proto.kuksa.val.v2 import types_pb2, val_pb2
from sdv.api.calls import caller
from sdv.api.errors import bounded_message
from sdv.broker import Broker
from sdv.broker.ownership import Owner, OwnerKind
from sdv.errors import (
    AccessDenied,
    ActuationError,
    AlreadyProvidedError,
    LimitExceededError,
    NoProviderError,
    SdvError,
    UnknownSignalError,
    ValueOutOfRangeError,
)
from sdv.types.datatypes import Value
from sdv.types.signals import SignalMetadata
from sdv.wire import value_to_v2

__all__ = ["ProviderSession", "resolve_signal"]

_LOG = logging.getLogger(__name__)
Publisher = Callable[[Broker, SignalMetadata, types_pb2.Datapoint, Owner | None], None]
_END = object()


def resolve_signal(broker: Broker, signal_id: types_pb2.SignalID) -> SignalMetadata:
    """The metadata of the signal a v2 ``SignalID`` names, by id or by path.

    Raises:
        UnknownSignalError: no such signal.
        ValueOutOfRangeError: the ``SignalID`` is empty.
    """
    which = signal_id.WhichOneof("signal")
    if which == "id":
        return broker.metadata_by_id(signal_id.id, access=caller())
    if which == "path":
        return broker.metadata(signal_id.path, access=caller())
    raise ValueOutOfRangeError("the request names no signal: SignalID has neither id nor path")


def _error_code(error: SdvError) -> types_pb2.ErrorCode.ValueType:
    if isinstance(error, UnknownSignalError):
        return types_pb2.ERROR_CODE_NOT_FOUND
    if isinstance(error, AccessDenied | AlreadyProvidedError):  # v2 has no ALREADY_EXISTS error code
        return types_pb2.ERROR_CODE_PERMISSION_DENIED
    return types_pb2.ERROR_CODE_INVALID_ARGUMENT


class ProviderSession:
    """The server side of one provider stream; also the broker's actuation provider for what it claimed.

    Args:
        broker: the broker the provider serves.
        publish: publishes one datapoint of the provider (validating it) for an owner.
        peer: the caller's address, naming the owner when the call carries no token.
    """

    def __init__(self, broker: Broker, publish: Publisher, peer: str = "") -> None:
        self._broker = broker
        self._publish = publish
        subject = caller().subject
        self.owner = Owner(OwnerKind.CLIENT, f"{subject} at {peer}" if peer and peer != subject else subject)
        self._outbound: asyncio.Queue[val_pb2.OpenProviderStreamResponse | BaseException | object] = (
            asyncio.Queue()
        )
        self._pending: dict[str, collections.deque[asyncio.Future[None]]] = {}  # callers waiting, per signal
        self._unanswered: collections.Counter[str] = collections.Counter()  # sent, not answered, per signal
        self._unanswered_total = 0
        self._provides_actuators = False
        self._closed = False

    # --- the broker's side ---------------------------------------------------------------------------------
    async def actuate(self, requests: Sequence[tuple[str, Value]]) -> None:
        """Forward validated requests to the provider and wait for its answer to each.

        The broker bounds the wait (``Limits.actuation_timeout_s``); cancelled, the requests stop waiting.

        Raises:
            NoProviderError: the stream ended before the provider answered.
            ActuationError: the provider refused a request.
            LimitExceededError: the provider has ``Limits.max_pending_actuations`` requests it has not answered.
        """
        if self._closed:
            raise NoProviderError("the provider disconnected")
        limits = self._broker.limits
        awaiting = limits.await_provider_answer
        if awaiting and self._unanswered_total + len(requests) > limits.max_pending_actuations:
            raise LimitExceededError(
                f"{self.owner.describe()} has {self._unanswered_total} actuation requests it has not answered; "
                f"the limit is {limits.max_pending_actuations} (Limits.max_pending_actuations)"
            )
        loop = asyncio.get_running_loop()
        message = val_pb2.BatchActuateStreamRequest()
        waiting: list[tuple[str, asyncio.Future[None]]] = []
        for path, value in requests:
            meta = self._broker.metadata(path, access=caller())
            item = message.actuate_requests.add()
            item.signal_id.id = meta.id
            value_to_v2(meta.datatype, value, item.value)
            if awaiting:
                future: asyncio.Future[None] = loop.create_future()
                self._pending.setdefault(path, collections.deque()).append(future)
                self._unanswered[path] += 1
                self._unanswered_total += 1
                waiting.append((path, future))
        self._outbound.put_nowait(val_pb2.OpenProviderStreamResponse(batch_actuate_stream_request=message))
        if not awaiting:
            return
        try:
            await asyncio.gather(*(future for _, future in waiting))
        finally:  # answered, refused, or given up (timed out): nobody waits for these futures any more
            for path, future in waiting:
                queue = self._pending.get(path)
                if queue is not None and future in queue:
                    queue.remove(future)
                if queue is not None and not queue:
                    del self._pending[path]

    @property
    def pending_actuations(self) -> int:
        """The actuation requests sent to the provider that it has not answered (timed-out ones included)."""
        return self._unanswered_total

    # --- the stream ----------------------------------------------------------------------------------------
    async def run(
        self, requests: AsyncIterator[val_pb2.OpenProviderStreamRequest]
    ) -> AsyncIterator[val_pb2.OpenProviderStreamResponse]:
        """Serve the stream: read the provider's messages and yield what the server sends it.

        Raises:
            SdvError: a refused claim (the call ends with its status).
        """
        reader = asyncio.create_task(self._read(requests))
        try:
            while True:
                item = await self._outbound.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, val_pb2.OpenProviderStreamResponse):
                    yield item
        finally:
            reader.cancel()
            self.close()

    def end(self) -> None:
        """The call ended (cancelled, the connection lost): release everything and stop serving the stream."""
        self.close()
        self._outbound.put_nowait(_END)

    def close(self) -> None:
        """Release the claims and fail the actuations still waiting for an answer."""
        if self._closed:
            return
        self._closed = True
        self._broker.release(self.owner)
        _LOG.info("provider stream of %s closed; its claims are released", self.owner.name)
        for queue in self._pending.values():
            for future in queue:
                if not future.done():
                    future.set_exception(NoProviderError("the provider disconnected before answering"))
        self._pending.clear()
        self._unanswered.clear()
        self._unanswered_total = 0

    async def _read(self, requests: AsyncIterator[val_pb2.OpenProviderStreamRequest]) -> None:
        try:
            async for request in requests:
                response = self._handle_request(request)
                if response is not None:
                    self._outbound.put_nowait(response)
        except SdvError as error:
            self._outbound.put_nowait(error)
            return
        if self._provides_actuators:
            # The provider sent its last message but still listens: kuksa-client's subscribe_target_values
            # sends its claim and half-closes. As in the KUKSA databroker, the call (and the claim) lasts until
            # the provider cancels it or its connection drops.
            _LOG.debug("provider stream of %s half-closed; it keeps receiving actuations", self.owner.name)
            return
        self._outbound.put_nowait(_END)

    def _handle_request(
        self, request: val_pb2.OpenProviderStreamRequest
    ) -> val_pb2.OpenProviderStreamResponse | None:
        action = request.WhichOneof("action")
        if action == "provide_actuation_request":
            return self._provide_actuation(request.provide_actuation_request)
        if action == "publish_values_request":
            return self._publish_values(request.publish_values_request)
        if action == "batch_actuate_stream_response":
            self._answer(request.batch_actuate_stream_response)
            return None
        if action == "provide_signal_request":
            paths = [
                self._broker.metadata_by_id(signal_id, access=caller()).path
                for signal_id in request.provide_signal_request.signals_sample_intervals
            ]
            self._broker.claim_signals(paths, self.owner, access=caller())
            _LOG.info("provider stream publishes %s", ", ".join(paths))
            return val_pb2.OpenProviderStreamResponse(provide_signal_response=val_pb2.ProvideSignalResponse())
        if action == "provider_error_indication":
            _LOG.warning(
                "provider reports %s",
                types_pb2.ProviderError.Name(request.provider_error_indication.provider_error),
            )
        # update_filter_response and get_provider_value_response answer requests this server never sends.
        return None

    def _provide_actuation(
        self, request: val_pb2.ProvideActuationRequest
    ) -> val_pb2.OpenProviderStreamResponse:
        paths = [resolve_signal(self._broker, signal_id).path for signal_id in request.actuator_identifiers]
        if not paths:
            raise ValueOutOfRangeError("ProvideActuationRequest names no actuator")
        self._broker.claim_actuators(paths, self.owner, self, access=caller())
        self._provides_actuators = True
        _LOG.info("provider stream provides %s", ", ".join(paths))
        return val_pb2.OpenProviderStreamResponse(
            provide_actuation_response=val_pb2.ProvideActuationResponse()
        )

    def _publish_values(
        self, request: val_pb2.PublishValuesRequest
    ) -> val_pb2.OpenProviderStreamResponse | None:
        refused = val_pb2.PublishValuesResponse(request_id=request.request_id)
        for signal_id, datapoint in request.data_points.items():
            try:
                self._publish(
                    self._broker,
                    self._broker.metadata_by_id(signal_id, access=caller()),
                    datapoint,
                    self.owner,
                )
            except SdvError as error:
                refused.status[signal_id].CopyFrom(
                    types_pb2.Error(code=_error_code(error), message=bounded_message(str(error)))
                )
        if not refused.status:
            return None
        return val_pb2.OpenProviderStreamResponse(publish_values_response=refused)

    def _answer(self, response: val_pb2.BatchActuateStreamResponse) -> None:
        try:
            path = resolve_signal(self._broker, response.signal_id).path
        except SdvError as error:
            _LOG.warning("provider answered for an unknown signal: %s", error)
            return
        if self._unanswered[path] > 0:
            self._unanswered[path] -= 1
            self._unanswered_total -= 1
        queue = self._pending.get(path)
        while queue and queue[0].done():
            queue.popleft()
        if not queue:
            _LOG.debug("provider answered for %s, which has no request waiting", path)
            return
        future = queue.popleft()
        code = response.error.code
        if response.HasField("error") and code not in (
            types_pb2.ERROR_CODE_OK,
            types_pb2.ERROR_CODE_UNSPECIFIED,
        ):
            detail = response.error.message or types_pb2.ErrorCode.Name(code)
            future.set_exception(ActuationError(f"{path}: the provider refused the request: {detail}"))
        else:
            future.set_result(None)
