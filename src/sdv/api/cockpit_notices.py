"""The ``sdv.cockpit.v1.UpdateNotices`` servicer: the vehicle's board of update notices, between the update agent
(a separate process, ``ota`` scope) and the head unit (``read`` / ``actuate`` on :data:`NOTICE_PATH`).

Invariants:

* the board (:class:`~sdv.ota.agent.consent.NoticeBoard`) lives in ``sdv serve``; every change wakes each open
  stream once (a thread-safe listener sets an asyncio event), and a stream sends the whole current state, so a
  slow head unit skips intermediate states and never holds more than one;
* an answer records who gave it: the name the head unit sent and the caller's token subject;
* deadlines and answer times are the server's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc

from sdv._proto.sdv.cockpit.v1 import notices_pb2, notices_pb2_grpc
from sdv.api.calls import caller
from sdv.api.errors import grpc_errors
from sdv.broker.access import Action
from sdv.ota.agent.consent import NoticeBoard, PostedNotice, UpdateResult
from sdv.ota.errors import NoticeFormatError
from sdv.ota.notice_wire import decision_from_proto, notice_from_proto, notice_to_proto

__all__ = ["MAX_NOTICE_TIMEOUT_S", "NOTICE_PATH", "UpdateNoticesServicer"]

_Context = grpc.aio.ServicerContext[Any, Any]

NOTICE_PATH = "Vehicle.Software.Notices"
"""The path a head unit's scope names: ``read`` to stream notices, ``actuate`` to answer them."""
MAX_NOTICE_TIMEOUT_S = 7 * 24 * 3600.0
"""The longest a posted notice waits for an answer."""
_MAX_NAME_CHARS = 128


class _Wakeup:
    """An asyncio event the board's thread-safe listener sets."""

    def __init__(self, board: NoticeBoard) -> None:
        self.event = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self.stop: Callable[[], None] = board.listen(self._wake)

    def _wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the stream's loop closed: it unsubscribes in a moment
            self._loop.call_soon_threadsafe(self.event.set)

    async def wait(self) -> None:
        await self.event.wait()
        self.event.clear()


class UpdateNoticesServicer(notices_pb2_grpc.UpdateNoticesServicer):
    """Serves the notice board.

    Args:
        board: the vehicle's notices.
        clock: the server's clock (UTC).
    """

    SERVICE_NAME = "sdv.cockpit.v1.UpdateNotices"

    def __init__(self, board: NoticeBoard, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.board = board
        self._clock = clock

    @grpc_errors
    async def StreamNotices(
        self, request: notices_pb2.StreamNoticesRequest, context: _Context
    ) -> AsyncIterator[notices_pb2.NoticeBoard]:
        """Every notice now, then the whole board after each change."""
        caller().check(Action.READ, NOTICE_PATH)
        wakeup = _Wakeup(self.board)
        try:
            while True:
                _, notices = self.board.notices()
                yield notices_pb2.NoticeBoard(
                    notices=[notice_to_proto(notice, request.language) for notice in notices]
                )
                await wakeup.wait()
        finally:
            wakeup.stop()

    @grpc_errors
    async def Decide(self, request: notices_pb2.DecideRequest, context: _Context) -> notices_pb2.UpdateNotice:
        """Record the driver's answer."""
        access = caller()
        access.check(Action.ACTUATE, NOTICE_PATH)
        decision = decision_from_proto(request.decision)
        driver = request.driver[:_MAX_NAME_CHARS]
        by = f"{driver} ({access.subject})" if driver else access.subject
        return notice_to_proto(self.board.decide(request.id, decision, by))

    @grpc_errors
    async def PostNotice(
        self, request: notices_pb2.PostNoticeRequest, context: _Context
    ) -> notices_pb2.UpdateNotice:
        """Show a notice of the update agent."""
        caller().check(Action.OTA)
        if not 0 < request.timeout_s <= MAX_NOTICE_TIMEOUT_S:
            raise NoticeFormatError(f"timeout_s must lie in (0, {MAX_NOTICE_TIMEOUT_S:g}] seconds")
        posted = notice_from_proto(request.notice)
        now = self._clock()
        notice = PostedNotice(
            id="",
            bundle=posted.bundle[:_MAX_NAME_CHARS],
            version=posted.version[:_MAX_NAME_CHARS],
            notice=posted.notice,
            consent_required=posted.consent_required,
            posted=now,
            deadline=now + timedelta(seconds=request.timeout_s),
        )
        notice_id = self.board.post(notice)
        return notice_to_proto(self._find(notice_id))

    @grpc_errors
    async def WatchNotice(
        self, request: notices_pb2.WatchNoticeRequest, context: _Context
    ) -> AsyncIterator[notices_pb2.UpdateNotice]:
        """The notice now, then after each change until it is answered."""
        caller().check(Action.OTA)
        wakeup = _Wakeup(self.board)
        try:
            while True:
                notice = self._find(request.id)
                yield notice_to_proto(notice)
                if notice.answer is not None:
                    return
                await wakeup.wait()
        finally:
            wakeup.stop()

    @grpc_errors
    async def TellResult(
        self, request: notices_pb2.TellResultRequest, context: _Context
    ) -> notices_pb2.UpdateNotice:
        """Record the update's result for the head unit."""
        caller().check(Action.OTA)
        self._find(request.id)
        self.board.tell(request.id, UpdateResult(request.success, request.message[:2000], self._clock()))
        return notice_to_proto(self._find(request.id))

    def _find(self, notice_id: str) -> PostedNotice:
        return self.board.get(notice_id)
