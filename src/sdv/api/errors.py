"""The one mapping from the project's exception tree to gRPC status codes, and the decorator every handler uses.

Invariants:

* Every RPC handler is wrapped by :func:`grpc_errors`: an :class:`~sdv.errors.SdvError` raised anywhere in it
  ends the call with the status :func:`status_code` gives and the error's own message; nothing else is caught,
  so programming errors keep their traceback (gRPC logs them and answers ``UNKNOWN``).
* One table, :data:`ERROR_CONTRACT`, answers every transport: a row per error class with its gRPC status and its
  VISS v2 error (``sdv.viss.errors``); it is ordered from the most to the least specific class, the first match
  wins, and :class:`~sdv.errors.SdvError` is the last row.
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
from dataclasses import dataclass
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
    "ERROR_CONTRACT",
    "MAX_STATUS_MESSAGE_BYTES",
    "STATUS_CODES",
    "ErrorMapping",
    "UnsupportedRequestError",
    "abort",
    "bounded_message",
    "grpc_errors",
    "http_code",
    "status_code",
]

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorMapping:
    """One row of the error contract: how one class of the project's errors is answered on each transport.

    Attributes:
        error: the class (its subclasses too, unless a row above names them).
        grpc: the gRPC status code (kuksa.val v1/v2, the typed services, the OTA agent).
        viss: the VISS v2 error number (an HTTP status) and reason; None: the VISS edge never raises it (the OTA
            agent's errors), so it falls to the last row.
    """

    error: type[SdvError]
    grpc: grpc.StatusCode
    viss: tuple[int, str] | None


_CODE = grpc.StatusCode
ERROR_CONTRACT: tuple[ErrorMapping, ...] = (
    ErrorMapping(UnknownSignalError, _CODE.NOT_FOUND, (404, "unavailable_data")),
    # A sensor or attribute cannot be set: gRPC says the argument is wrong (as KUKSA); VISS says the request is
    # forbidden, its word for a set of something not settable.
    ErrorMapping(ReadOnlyError, _CODE.INVALID_ARGUMENT, (403, "forbidden_request")),
    ErrorMapping(ValueOutOfRangeError, _CODE.INVALID_ARGUMENT, (400, "bad_request")),
    ErrorMapping(NoProviderError, _CODE.UNAVAILABLE, (503, "service_unavailable")),
    ErrorMapping(ProviderTimeoutError, _CODE.DEADLINE_EXCEEDED, (504, "gateway_timeout")),
    # A federated owner's reply never came: whether the frame was sent is unknown.
    ErrorMapping(OutcomeUnknownError, _CODE.DEADLINE_EXCEEDED, (504, "gateway_timeout")),
    ErrorMapping(AlreadyProvidedError, _CODE.ALREADY_EXISTS, (403, "forbidden_request")),
    ErrorMapping(LimitExceededError, _CODE.RESOURCE_EXHAUSTED, (429, "too_many_requests")),
    ErrorMapping(AccessDenied, _CODE.PERMISSION_DENIED, (403, "forbidden_request")),
    ErrorMapping(AuthenticationError, _CODE.UNAUTHENTICATED, (401, "invalid_token")),
    # gRPC has a code for "not offered"; VISS answers a request it does not serve as a bad one.
    ErrorMapping(UnsupportedRequestError, _CODE.UNIMPLEMENTED, (400, "bad_request")),
    # A provider accepted the request but failed to carry it out (for the HAL: the frame could not be sent).
    # KUKSA reports such transmission failures as DATA_LOSS; clients written for it check that code. For VISS the
    # upstream failed.
    ErrorMapping(ActuationError, _CODE.DATA_LOSS, (502, "bad_gateway")),
    ErrorMapping(HalError, _CODE.DATA_LOSS, (502, "bad_gateway")),
    # The OTA agent (sdv.ota.v1.Ota); docs/ota.md lists this contract.
    ErrorMapping(TransferInProgressError, _CODE.ABORTED, None),
    ErrorMapping(
        UnknownNoticeError, _CODE.NOT_FOUND, None
    ),  # the update notices (sdv.cockpit.v1.UpdateNotices)
    ErrorMapping(NoticeFormatError, _CODE.INVALID_ARGUMENT, None),
    ErrorMapping(AgentStateError, _CODE.FAILED_PRECONDITION, None),
    ErrorMapping(TransferOffsetError, _CODE.OUT_OF_RANGE, None),
    ErrorMapping(InsufficientSpaceError, _CODE.RESOURCE_EXHAUSTED, None),
    ErrorMapping(OperationCancelledError, _CODE.CANCELLED, None),
    ErrorMapping(TransferStalledError, _CODE.DEADLINE_EXCEEDED, None),
    # A refused bundle: not authorized by the trust root for this ECU (signatures, expiry, counter...).
    ErrorMapping(VerificationError, _CODE.INVALID_ARGUMENT, None),
    ErrorMapping(SdvError, _CODE.INTERNAL, (503, "service_unavailable")),
)
"""The one error contract of every transport, ordered from the most to the least specific class."""

STATUS_CODES: tuple[tuple[type[SdvError], grpc.StatusCode], ...] = tuple(
    (row.error, row.grpc) for row in ERROR_CONTRACT
)
"""The gRPC column of :data:`ERROR_CONTRACT`."""

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
