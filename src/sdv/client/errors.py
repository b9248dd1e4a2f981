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

from sdv.client.channel import ChannelSecurity
from sdv.errors import (
    AccessDenied,
    ActuationError,
    AlreadyProvidedError,
    AuthenticationError,
    LimitExceededError,
    NoProviderError,
    ProviderTimeoutError,
    SdvError,
    ServerUnreachableError,
    UnknownSignalError,
    ValueOutOfRangeError,
    WrongServiceError,
)

__all__ = ["ServerUnreachableError", "WrongServiceError", "entry_error", "handshake_failure", "translate"]


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


def handshake_failure(details: str, target: str, security: ChannelSecurity) -> ServerUnreachableError | None:
    """What a connection that failed in its TLS handshake most likely means, given the client's security.

    gRPC reports a server that hangs up during the handshake only as ``Socket closed``: a TLS server a plaintext
    client talks to, or a mutual-TLS server that got no (or an untrusted) client certificate.

    Returns:
        The error to raise instead of gRPC's message, or None when ``details`` is not a handshake failure.
    """
    if "failed to connect" not in details:  # a connection that broke later is no handshake failure
        return None
    if "WRONG_VERSION_NUMBER" in details:
        hint = "the server does not speak TLS: connect without the --tls flags (or with grpc://)"
    elif "CERTIFICATE_VERIFY_FAILED" in details:
        hint = (
            "the server's certificate is not signed by the CA given (--tls-ca) or does not carry the host's name "
            "(--tls-server-name)"
        )
    elif "Socket closed" in details or "Connection reset" in details:
        if not security.tls:
            hint = (
                "the server closed the connection: it may require TLS (give --tls-ca FILE, or use grpcs://)"
            )
        elif security.certificate_chain is None:
            hint = (
                "the server ended the TLS handshake: it may require a client certificate (give --tls-cert and "
                "--tls-key)"
            )
        else:
            hint = "the server ended the TLS handshake: it does not trust the client certificate (--tls-cert)"
    else:
        return None
    return ServerUnreachableError(f"cannot talk to {target}: {hint}")


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


# kuksa.val.v1 reports per-entry problems with HTTP-like codes inside the response.
_ENTRY_ERRORS: dict[int, type[SdvError]] = {
    400: ValueOutOfRangeError,
    401: AuthenticationError,
    403: AccessDenied,
    404: UnknownSignalError,
    409: AlreadyProvidedError,
}


def entry_error(path: str, code: int, message: str) -> SdvError:
    """The project's exception for a per-entry error of a ``kuksa.val.v1`` response (``DataEntryError``)."""
    return _ENTRY_ERRORS.get(code, SdvError)(
        f"{path}: {message}" if path and path not in message else message
    )
