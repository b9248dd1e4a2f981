"""The one mapping from the project's exception tree to gRPC status codes, and the decorator every handler uses.

Invariants:

* Every RPC handler is wrapped by :func:`grpc_errors`: an :class:`~sdv.errors.SdvError` raised anywhere in it
  ends the call with the status :func:`status_code` gives and the error's own message; nothing else is caught,
  so programming errors keep their traceback (gRPC logs them and answers ``UNKNOWN``).
* The table is ordered from the most to the least specific class: the first match wins.
* v1 per-entry errors use the HTTP-like codes of :func:`http_code`, derived from the same table.
* A servicer with a ``SERVICE_NAME`` (the typed services) is refused by the RPC, never by the signals its profile
  maps to it: its caller names no signal, so naming one would tell it the profile.
* Every status message the server sets goes through :func:`abort` (per-entry messages through
  :func:`bounded_message`): at most :data:`MAX_STATUS_MESSAGE_BYTES` of UTF-8, so that, percent-encoded in the
  ``grpc-message`` trailer, it stays far below the peer's metadata limit (8 KiB by default). A longer one would
  reach the caller as ``RESOURCE_EXHAUSTED`` or ``UNAVAILABLE`` instead of the status meant.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from typing import Any, NoReturn, TypeVar, cast, overload

import grpc

from sdv.api.calls import caller
from sdv.errors import (
    AccessDenied,
    ActuationError,
    AlreadyProvidedError,
    AuthenticationError,
    HalError,
    LimitExceededError,
    NoProviderError,
    OutcomeUnknownError,
    ProviderTimeoutError,
    ReadOnlyError,
    SdvError,
    UnknownSignalError,
    UnsupportedRequestError,
    ValueOutOfRangeError,
    VerificationError,
)
from sdv.ota.errors import (
    AgentStateError,
    InsufficientSpaceError,
    NoticeFormatError,
    OperationCancelledError,
    TransferInProgressError,
    TransferOffsetError,
    TransferStalledError,
    UnknownNoticeError,
)

__all__ = [
    "MAX_STATUS_MESSAGE_BYTES",
    "STATUS_CODES",
    "UnsupportedRequestError",
    "abort",
    "bounded_message",
    "grpc_errors",
    "http_code",
    "status_code",
]

_LOG = logging.getLogger(__name__)


STATUS_CODES: tuple[tuple[type[SdvError], grpc.StatusCode], ...] = (
    (UnknownSignalError, grpc.StatusCode.NOT_FOUND),
    (ReadOnlyError, grpc.StatusCode.INVALID_ARGUMENT),
    (ValueOutOfRangeError, grpc.StatusCode.INVALID_ARGUMENT),
    (NoProviderError, grpc.StatusCode.UNAVAILABLE),
    (ProviderTimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (OutcomeUnknownError, grpc.StatusCode.DEADLINE_EXCEEDED),  # a federated owner's reply never came
    (AlreadyProvidedError, grpc.StatusCode.ALREADY_EXISTS),
    (LimitExceededError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (AccessDenied, grpc.StatusCode.PERMISSION_DENIED),
    (AuthenticationError, grpc.StatusCode.UNAUTHENTICATED),
    (UnsupportedRequestError, grpc.StatusCode.UNIMPLEMENTED),
    # A provider accepted the request but failed to carry it out (for the HAL: the frame could not be sent).
    # KUKSA reports such transmission failures as DATA_LOSS; clients written for it check that code.
    (ActuationError, grpc.StatusCode.DATA_LOSS),
    (HalError, grpc.StatusCode.DATA_LOSS),
    # The OTA agent (sdv.ota.v1.Ota); docs/ota.md lists this contract.
    (TransferInProgressError, grpc.StatusCode.ABORTED),
    (UnknownNoticeError, grpc.StatusCode.NOT_FOUND),  # the update notices (sdv.cockpit.v1.UpdateNotices)
    (NoticeFormatError, grpc.StatusCode.INVALID_ARGUMENT),
    (AgentStateError, grpc.StatusCode.FAILED_PRECONDITION),
    (TransferOffsetError, grpc.StatusCode.OUT_OF_RANGE),
    (InsufficientSpaceError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (OperationCancelledError, grpc.StatusCode.CANCELLED),
    (TransferStalledError, grpc.StatusCode.DEADLINE_EXCEEDED),
    # A refused bundle: not authorized by the trust root for this ECU (signatures, expiry, counter...).
    (VerificationError, grpc.StatusCode.INVALID_ARGUMENT),
    (SdvError, grpc.StatusCode.INTERNAL),
)

_HTTP_CODES: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.DATA_LOSS: 502,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 412,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.OUT_OF_RANGE: 416,
}


def status_code(error: SdvError) -> grpc.StatusCode:
    """The gRPC status code of an error of the project's tree."""
    for error_type, code in STATUS_CODES:
        if isinstance(error, error_type):
            return code
    return grpc.StatusCode.INTERNAL  # unreachable: SdvError is the last row


def http_code(error: SdvError) -> tuple[int, str]:
    """The HTTP-like code and reason of a v1 per-entry error (404 ``not_found``, 400 ``invalid_argument``...)."""
    code = status_code(error)
    return _HTTP_CODES[code], code.name.lower()


_Servicer = TypeVar("_Servicer")
_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
_Context = TypeVar("_Context", bound="grpc.aio.ServicerContext[Any, Any]")
_Unary = Callable[[_Servicer, _Request, _Context], Coroutine[Any, Any, _Response]]
_Streaming = Callable[[_Servicer, _Request, _Context], AsyncIterator[_Response]]


MAX_STATUS_MESSAGE_BYTES = 1024
"""The longest status message sent, in bytes of UTF-8 (at most three times that once percent-encoded)."""
_CUT = " ... ({} more characters)"


def bounded_message(message: str) -> str:
    """``message``, cut to at most :data:`MAX_STATUS_MESSAGE_BYTES` bytes of UTF-8 and saying how much was cut."""
    encoded = message.encode()
    if len(encoded) <= MAX_STATUS_MESSAGE_BYTES:
        return message
    room = MAX_STATUS_MESSAGE_BYTES - len(_CUT.format(len(message)))
    kept = encoded[:room].decode(errors="ignore")  # never half a character
    return kept + _CUT.format(len(message) - len(kept))


async def abort(context: grpc.aio.ServicerContext[Any, Any], code: grpc.StatusCode, message: str) -> NoReturn:
    """End the call with ``code`` and ``message`` (bounded by :func:`bounded_message`)."""
    await context.abort(code, bounded_message(message))
    raise AssertionError("unreachable: ServicerContext.abort raises")  # pragma: no cover


def _as_seen_by_caller(servicer: object, method: str, error: SdvError) -> SdvError:
    """``error``, or for a typed service's refusal one that names the RPC instead of the mapped signal."""
    service = getattr(servicer, "SERVICE_NAME", None)
    if service is None or not isinstance(error, AccessDenied):
        return error
    return caller().denied(f"use {service}/{method}; it needs the rights of the signals it carries")


async def _abort(context: grpc.aio.ServicerContext[Any, Any], error: SdvError) -> None:
    code = status_code(error)
    _LOG.debug("request refused with %s: %s", code.name, error)
    await abort(context, code, str(error))


@overload
def grpc_errors(
    handler: _Unary[_Servicer, _Request, _Context, _Response],
) -> _Unary[_Servicer, _Request, _Context, _Response]: ...
@overload
def grpc_errors(
    handler: _Streaming[_Servicer, _Request, _Context, _Response],
) -> _Streaming[_Servicer, _Request, _Context, _Response]: ...
def grpc_errors(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a unary or streaming (async generator) RPC handler so that project errors become gRPC statuses."""
    if inspect.isasyncgenfunction(handler):
        streaming = cast(Callable[..., AsyncGenerator[Any, None]], handler)

        @functools.wraps(handler)
        async def stream_wrapper(
            servicer: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            try:
                # aclosing: a cancelled call closes the handler at once, releasing its subscription.
                async with contextlib.aclosing(streaming(servicer, request, context)) as responses:
                    async for response in responses:
                        yield response
            except SdvError as error:
                await _abort(context, _as_seen_by_caller(servicer, handler.__name__, error))

        return stream_wrapper

    unary = cast(_Unary[Any, Any, Any, Any], handler)

    @functools.wraps(handler)
    async def unary_wrapper(servicer: Any, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await unary(servicer, request, context)
        except SdvError as error:
            await _abort(context, _as_seen_by_caller(servicer, handler.__name__, error))

    return unary_wrapper
