"""The SDK's connection: a :class:`~sdv.client.VehicleClient` whose channel the typed services share.

The channel carries the connection's security (:class:`~sdv.client.ChannelSecurity`: TLS, a client certificate,
the bearer token as ``authorization: Bearer <token>`` call metadata, as KUKSA's databroker expects it).
"""

from __future__ import annotations

import dataclasses

import grpc

from sdv.client import ChannelSecurity, VehicleClient
from sdv.errors import SdvError

__all__ = ["SdkClient"]


class SdkClient(VehicleClient):
    """A :class:`VehicleClient` that lends its channel to the typed services' stubs.

    Args:
        target: the server as ``HOST:PORT``.
        token: a bearer token (a JWT for KUKSA), or None; it is added to ``security``.
        timeout: seconds a single request may take.
        security: TLS settings (and a token), or None for plaintext.
    """

    def __init__(
        self,
        target: str,
        *,
        token: str | None = None,
        timeout: float = 5.0,
        security: ChannelSecurity | None = None,
    ) -> None:
        security = security or ChannelSecurity()
        if token is not None:
            security = dataclasses.replace(security, token=token)
        super().__init__(target, timeout=timeout, security=security)

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
