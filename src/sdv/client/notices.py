"""``UpdateNoticesClient``: the head unit's side of ``sdv.cockpit.v1.UpdateNotices`` — the update notices the
vehicle's update agent posted, and the driver's answer to them.

Invariants:

* used inside ``async with`` (the channel is opened there and closed on leaving, which ends open streams);
* every failed call raises an :class:`~sdv.errors.SdvError` with the server's message; no ``grpc`` exception
  leaves this module;
* notices are returned as the generated ``UpdateNotice`` messages (``id``, ``bundle``, ``version``,
  ``consent_required``, ``texts`` by language, ``deadline``, ``answer``, ``result``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Final, Self

import grpc

from sdv._proto.sdv.cockpit.v1 import notices_pb2, notices_pb2_grpc
from sdv.client.address import SIGNAL_SERVER_PORT, resolve_target
from sdv.client.channel import ChannelSecurity, open_channel
from sdv.client.client import DEFAULT_SERVER
from sdv.client.errors import translate
from sdv.errors import ValueOutOfRangeError

__all__ = ["DECISIONS", "UpdateNoticesClient"]

DECISIONS: Final = {
    "accept": notices_pb2.DECISION_ACCEPT,
    "postpone": notices_pb2.DECISION_POSTPONE,
    "decline": notices_pb2.DECISION_DECLINE,
}
"""The answers a driver can give."""


class UpdateNoticesClient:
    """Streams the vehicle's update notices and answers them (``read`` / ``actuate`` on
    ``Vehicle.Software.Notices`` when the server checks tokens).

    Example::

        async with UpdateNoticesClient("127.0.0.1:55555") as notices:
            async for board in notices.stream(language="zh-CN"):
                for notice in board:
                    if notice.consent_required and not notice.HasField("answer"):
                        await notices.decide(notice.id, "accept", driver="driver 1")

    Args:
        target: the server as ``HOST[:PORT]``, ``grpc://`` or ``grpcs://``.
        timeout: seconds a single request (not a stream) may take.
        security: TLS and the bearer token.
    """

    def __init__(
        self, target: str = DEFAULT_SERVER, *, timeout: float = 5.0, security: ChannelSecurity | None = None
    ) -> None:
        self.target, self.security = resolve_target(target, SIGNAL_SERVER_PORT, security or ChannelSecurity())
        self.timeout = timeout
        self._channel: grpc.aio.Channel | None = None

    async def __aenter__(self) -> Self:
        self._channel = open_channel(self.target, self.security)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close(None)

    @property
    def _stub(self) -> notices_pb2_grpc.UpdateNoticesAsyncStub:
        if self._channel is None:
            raise RuntimeError("UpdateNoticesClient is not connected: use it in 'async with'")
        return notices_pb2_grpc.UpdateNoticesStub(self._channel)

    async def stream(self, language: str = "") -> AsyncGenerator[list[notices_pb2.UpdateNotice], None]:
        """Every notice now, then all of them again after each change (``language``: only that text).

        Raises:
            AccessDenied, ServerUnreachableError: on the first iteration.
        """
        call = self._stub.StreamNotices(notices_pb2.StreamNoticesRequest(language=language))
        try:
            async for board in call:
                yield list(board.notices)
        except grpc.aio.AioRpcError as error:
            raise translate(error, self.target, reached_server=False) from error
        finally:
            call.cancel()

    async def decide(self, notice_id: str, decision: str, *, driver: str = "") -> notices_pb2.UpdateNotice:
        """Answer a notice: ``accept``, ``postpone`` or ``decline``; returns it with the answer recorded.

        Raises:
            ValueOutOfRangeError: another decision.
            SdvError: the server refused it: an unknown notice, one answered already, or a caller who may not
                answer (``AccessDenied``).
        """
        number = DECISIONS.get(decision)
        if number is None:
            raise ValueOutOfRangeError(f"decision {decision!r}: expected one of {', '.join(DECISIONS)}")
        request = notices_pb2.DecideRequest(id=notice_id, decision=number, driver=driver)
        try:
            return await self._stub.Decide(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as error:
            raise translate(error, self.target, reached_server=False) from error
