"""The SDK's connection: a :class:`~sdv.client.VehicleClient` whose channel can carry a bearer token.

The token travels as ``authorization: Bearer <token>`` call metadata, as KUKSA's databroker expects it. Without a
token, the channel is exactly the client's own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc

from sdv.api._proto.kuksa.val.v2 import val_pb2_grpc
from sdv.client import VehicleClient
from sdv.errors import SdvError

__all__ = ["SdkClient"]


if TYPE_CHECKING:  # generic only in the type stubs
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor[Any, Any]
else:
    _UnaryUnary = grpc.aio.UnaryUnaryClientInterceptor
    _UnaryStream = grpc.aio.UnaryStreamClientInterceptor


def _with_token(details: grpc.aio.ClientCallDetails, header: tuple[str, str]) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()), header)
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


# grpc.aio files an interceptor under the first call type it implements only, so one class per call type.
class _UnaryBearerToken(_UnaryUnary):
    """Adds ``authorization: Bearer <token>`` to unary calls."""

    def __init__(self, header: tuple[str, str]) -> None:
        self._header = header

    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_token(client_call_details, self._header), request)


class _StreamBearerToken(_UnaryStream):
    """Adds ``authorization: Bearer <token>`` to server-streaming calls (subscriptions)."""

    def __init__(self, header: tuple[str, str]) -> None:
        self._header = header

    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(_with_token(client_call_details, self._header), request)


class SdkClient(VehicleClient):
    """A :class:`VehicleClient` that sends a bearer token with every call, if given one.

    Args:
        target: the server as ``HOST:PORT``.
        token: a bearer token (a JWT for KUKSA), or None.
        timeout: seconds a single request may take.
    """

    def __init__(self, target: str, *, token: str | None = None, timeout: float = 5.0) -> None:
        super().__init__(target, timeout=timeout)
        self._token = token

    @property
    def channel(self) -> grpc.aio.Channel:
        """The channel (with the token, if any), for the typed services' stubs.

        Raises:
            RuntimeError: outside ``async with``.
        """
        if self._channel is None:
            raise RuntimeError("SdkClient is not connected: use it in 'async with'")
        return self._channel

    def translate(self, error: grpc.aio.AioRpcError, *, actuation: bool = False) -> SdvError:
        """A failed call on :attr:`channel` as the project's exception, as the client maps its own calls.

        Args:
            error: the gRPC error.
            actuation: the call asked an actuator for a value (``UNAVAILABLE`` then means "no provider" when
                the channel is connected).
        """
        return self._error(error, actuation=actuation)

    async def __aenter__(self) -> SdkClient:
        if self._token is None:
            await super().__aenter__()
            return self
        # The same steps as VehicleClient.__aenter__, on a channel with the token interceptor.
        header = ("authorization", f"Bearer {self._token}")
        # grpc-stubs type the interceptors parameter as a placeholder that no class matches.
        interceptors: list[Any] = [_UnaryBearerToken(header), _StreamBearerToken(header)]
        self._channel = grpc.aio.insecure_channel(self.target, interceptors=interceptors)
        self._stub = val_pb2_grpc.VALStub(self._channel)
        try:
            await self.server_info()
        except BaseException:
            await self.close()
            raise
        return self
