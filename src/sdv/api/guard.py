"""The call guard: one server interceptor in front of every RPC of every service.

For each call it (1) authenticates the caller from its ``authorization: Bearer <jwt>`` metadata when the server
checks tokens, (2) enforces the limits on open streams, and (3) runs the handler on behalf of the caller's
:class:`~sdv.broker.access.Access`, against which the broker checks every read, subscription, actuation and
publication. Handlers therefore hold no authorization code of their own.

Invariants:

* Health checking (``grpc.health.v1.Health``) is the only service served without a token, so that supervisors
  can probe the server; everything else, server reflection included, needs one when tokens are checked.
* A call refused here never reaches its handler: ``UNAUTHENTICATED`` for a missing or bad token (the message
  says what was wrong), ``RESOURCE_EXHAUSTED`` for a stream beyond a limit; a refused client-streaming call is
  read for a moment first, so that the client sees the refusal rather than its own failed write.
* A streaming response ends with ``UNAUTHENTICATED`` at the first message after its token expired.
* A request message that does not parse ends the call with ``INVALID_ARGUMENT`` naming the message type, after
  authentication (so unauthenticated callers learn nothing of the contract).
* Without token checks every call acts with all rights, as one client per connection (the peer address), so the
  per-client subscription limit still applies per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc

from sdv.api.calls import serve_for
from sdv.api.errors import abort
from sdv.api.tokens import TokenVerifier
from sdv.broker.access import UNRESTRICTED, Access
from sdv.broker.config import Limits
from sdv.errors import AuthenticationError

__all__ = ["EXEMPT_SERVICES", "CallGuard"]

_LOG = logging.getLogger(__name__)

_Context = grpc.aio.ServicerContext[Any, Any]
EXEMPT_SERVICES = ("grpc.health.v1.Health",)
_PROVIDER_METHODS = ("/kuksa.val.v2.VAL/OpenProviderStream",)
_BEARER = "bearer "


def _service_of(method: str) -> str:
    return method.lstrip("/").split("/", 1)[0]


class _Malformed:
    """Stands in for a request message that did not parse, so the guard can answer with a clear status."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as error:  # protobuf's DecodeError, or anything a parser raises on hostile bytes
            return _Malformed(str(error))

    return parse


async def _refuse_malformed(request: Any, context: _Context) -> None:
    if isinstance(request, _Malformed):
        await abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"malformed request: {request.reason}")


async def _checked_stream(requests: AsyncIterator[Any], context: _Context) -> AsyncIterator[Any]:
    async for request in requests:
        await _refuse_malformed(request, context)
        yield request


async def _drain(requests: AsyncIterator[Any], seconds: float) -> None:
    """Read and drop what a refused client is still sending, for at most ``seconds``.

    A client that writes while the refusal is on its way sees its write fail, and gRPC's client then reports
    that failure (``INTERNAL``, ``CANCELLED``) instead of the status the server sent. Reading until the client
    half-closes, or pauses, lets the refusal arrive first. The pause that ends the drain is a tenth of
    ``seconds``: a client waiting for an answer (a provider after its claim) is refused promptly.
    """
    iterator = aiter(requests)
    with contextlib.suppress(TimeoutError, StopAsyncIteration):
        async with asyncio.timeout(seconds):
            while True:
                await asyncio.wait_for(anext(iterator), seconds / 10)


if TYPE_CHECKING:
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:  # generic only in the type stubs
    _Interceptor = grpc.aio.ServerInterceptor


class CallGuard(_Interceptor):
    """Authenticates every call, limits open streams and runs handlers for their caller.

    Args:
        limits: the stream limits (``max_streams``, ``max_provider_streams``).
        verifier: checks bearer tokens; None serves every call with all rights (``--insecure`` or the loopback
            demo).
    """

    def __init__(self, limits: Limits, verifier: TokenVerifier | None = None) -> None:
        self._limits = limits
        self._verifier = verifier
        self.open_streams = 0
        self.open_provider_streams = 0

    # --- who is calling ------------------------------------------------------------------------------------
    def _authenticate(self, context: _Context) -> tuple[Access, float, str | None]:
        """The caller's rights, when they expire (``inf`` without token checks) and its token (if checked)."""
        if self._verifier is None:
            return dataclasses.replace(UNRESTRICTED, subject=context.peer()), float("inf"), None
        values = [value for key, value in context.invocation_metadata() or () if key == "authorization"]
        if not values:
            raise AuthenticationError("this server requires a bearer token: authorization: Bearer <jwt>")
        header = values[-1] if isinstance(values[-1], str) else values[-1].decode("latin-1")
        if not header.lower().startswith(_BEARER):
            raise AuthenticationError("the authorization metadata must be 'Bearer <jwt>'")
        token = header[len(_BEARER) :].strip()
        return (*self._verifier.verify(token), token)

    async def _admit(self, context: _Context, requests: AsyncIterator[Any] | None = None) -> float:
        """Authenticate and act for the caller; abort the call with ``UNAUTHENTICATED`` otherwise (after reading
        what a refused client-streaming call is still sending, as for a stream limit: see :func:`_drain`)."""
        try:
            access, expires, token = self._authenticate(context)
        except AuthenticationError as error:
            _LOG.debug("refused a call from %s: %s", context.peer(), error)
            if requests is not None:
                await _drain(requests, self._limits.refused_stream_drain_s)
            await abort(context, grpc.StatusCode.UNAUTHENTICATED, str(error))
        serve_for(access, token)
        return expires

    # --- wrapping the handlers -----------------------------------------------------------------------------
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or _service_of(method) in EXEMPT_SERVICES:
            return handler
        provider = method in _PROVIDER_METHODS
        options = {
            "request_deserializer": _tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(self._unary(handler.unary_unary, False), **options)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(self._unary(handler.stream_unary, True), **options)
        if handler.unary_stream is not None:
            behaviour = self._stream(handler.unary_stream, provider, False)
            return grpc.unary_stream_rpc_method_handler(behaviour, **options)
        behaviour = self._stream(handler.stream_stream, provider, True)
        return grpc.stream_stream_rpc_method_handler(behaviour, **options)

    def _unary(self, behaviour: Any, streamed: bool) -> Callable[..., Awaitable[Any]]:
        # grpc's typing describes the synchronous handlers; the aio server's behaviours are coroutines.
        async def guarded(request: Any, context: _Context) -> Any:
            await self._admit(context, request if streamed else None)
            if streamed:
                return await behaviour(_checked_stream(request, context), context)
            await _refuse_malformed(request, context)
            return await behaviour(request, context)

        return guarded

    def _stream(self, behaviour: Any, provider: bool, streamed: bool) -> Callable[..., AsyncIterator[Any]]:
        async def guarded(request: Any, context: _Context) -> AsyncIterator[Any]:
            expires = await self._admit(context, request if streamed else None)
            if streamed:
                request = _checked_stream(request, context)
            else:
                await _refuse_malformed(request, context)
            await self._open_stream(context, provider, request if streamed else None)
            try:
                # Closed as soon as the call ends, so the handler's own cleanup (closing its broker
                # subscription) runs then, not whenever the generator is collected.
                async with contextlib.aclosing(behaviour(request, context)) as responses:
                    async for response in responses:
                        if time.time() >= expires:
                            await abort(context, grpc.StatusCode.UNAUTHENTICATED, "the token has expired")
                        yield response
            finally:
                self.open_streams -= 1
                if provider:
                    self.open_provider_streams -= 1

        return guarded

    async def _open_stream(
        self, context: _Context, provider: bool, requests: AsyncIterator[Any] | None
    ) -> None:
        limits = self._limits
        refusal = None
        if self.open_streams >= limits.max_streams:
            refusal = f"{self.open_streams} streams are open; the limit is {limits.max_streams}"
        elif provider and self.open_provider_streams >= limits.max_provider_streams:
            refusal = (
                f"{self.open_provider_streams} provider streams are open; the limit is "
                f"{limits.max_provider_streams}"
            )
        if refusal is not None:
            if requests is not None:
                await _drain(requests, limits.refused_stream_drain_s)
            await abort(context, grpc.StatusCode.RESOURCE_EXHAUSTED, refusal)
        self.open_streams += 1
        if provider:
            self.open_provider_streams += 1
