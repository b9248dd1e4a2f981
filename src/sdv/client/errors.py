"""gRPC statuses as the project's exceptions, at the client's boundary.

Invariants:

* Every status a call ends with becomes an :class:`~sdv.errors.SdvError` carrying the server's own message, so
  an app handles a refused request from a remote broker exactly as one from the broker in its own process.
* ``UNAVAILABLE`` is ambiguous in gRPC: the server reports an actuator without provider with it, and the channel
  reports a server it cannot reach with it too. It means "no provider" only for an actuation that reached the
  server; otherwise it is :class:`ServerUnreachableError`. ``DEADLINE_EXCEEDED`` likewise means that an
  actuation's provider did not answer in time (:class:`~sdv.errors.ProviderTimeoutError`) only for an actuation.
"""

from __future__ import annotations

import grpc

from sdv.errors import (
    AccessDenied,
    ActuationError,
    AlreadyProvidedError,
    AuthenticationError,
    LimitExceededError,
    NoProviderError,
    ProviderTimeoutError,
    SdvError,
    UnknownSignalError,
    ValueOutOfRangeError,
)

__all__ = ["ServerUnreachableError", "WrongServiceError", "translate"]


class ServerUnreachableError(SdvError, ConnectionError):
    """The server cannot be reached (not running, wrong address, or the connection broke)."""


class WrongServiceError(SdvError):
    """The address answers, but with another service (``UNIMPLEMENTED`` for the first call): an update agent
    where a signal server was expected, or the other way round."""


_ERRORS: dict[grpc.StatusCode, type[SdvError]] = {
    grpc.StatusCode.NOT_FOUND: UnknownSignalError,
    grpc.StatusCode.INVALID_ARGUMENT: ValueOutOfRangeError,
    grpc.StatusCode.PERMISSION_DENIED: AccessDenied,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: LimitExceededError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyProvidedError,
    # The provider accepted the request but could not carry it out (for the HAL: the frame was not sent).
    grpc.StatusCode.DATA_LOSS: ActuationError,
}


def translate(error: grpc.aio.AioRpcError, target: str, *, reached_server: bool) -> SdvError:
    """The project's exception for a failed call.

    Args:
        error: the gRPC error the call ended with.
        target: the server address, named in connection errors.
        reached_server: whether the call is known to have reached the server (an actuation on a channel that
            is connected), which makes ``UNAVAILABLE`` mean "no provider" and ``DEADLINE_EXCEEDED`` "the
            provider did not answer".

    Returns:
        The exception to raise (``raise translate(...) from error``).
    """
    code = error.code()
    message = error.details() or code.name.lower()
    if code == grpc.StatusCode.UNAVAILABLE:
        if reached_server:
            return NoProviderError(message)
        return ServerUnreachableError(f"cannot reach {target}: {message}")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        if reached_server:
            return ProviderTimeoutError(message)
        return SdvError(f"{target} did not answer in time: {message}")
    return _ERRORS.get(code, SdvError)(message)
