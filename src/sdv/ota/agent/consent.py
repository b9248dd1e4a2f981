"""User notice and consent: what the agent posts to the cockpit before an update, the driver's answer, and the
result told afterwards (UN R156 §7.2.1.1–7.2.1.3; GB 44496-2024's user notification).

The agent and ``sdv serve`` (which serves the cockpit to the head unit) are separate processes. The agent speaks
to a :class:`ConsentChannel`; :class:`NoticeBoard` is the board the cockpit service serves, and a channel of its
own for an agent in the same process; :mod:`sdv.ota.signals` has the channel that reaches ``sdv serve``'s board
over gRPC with the agent's token (see ``docs/ota.md``).

Invariants:

* a notice is answered at most once; an answer names who gave it and when (the server's clock);
* a notice not answered before its deadline counts as no consent (never as accepted);
* the board holds at most :data:`MAX_NOTICES` notices; the oldest answered ones are dropped first.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from sdv.ota.bundle.vehicle_terms import Notice
from sdv.ota.errors import ConsentError, UnknownNoticeError

__all__ = [
    "MAX_NOTICES",
    "Answer",
    "ConsentChannel",
    "Decision",
    "NoticeBoard",
    "PostedNotice",
    "UpdateResult",
]

MAX_NOTICES = 64
"""Notices a board keeps."""


class Decision(StrEnum):
    """The driver's answer to a notice."""

    ACCEPT = "accept"
    POSTPONE = "postpone"
    DECLINE = "decline"


@dataclass(frozen=True)
class Answer:
    """An answer to a notice.

    Attributes:
        decision: accept, postpone or decline.
        by: who answered (the head unit's caller, or the name it gave).
        time: when (UTC).
    """

    decision: Decision
    by: str
    time: datetime


@dataclass(frozen=True)
class UpdateResult:
    """What the user is told after the update.

    Attributes:
        success: whether the update is running now.
        message: the notice's text for the outcome, or the failure.
        time: when (UTC).
    """

    success: bool
    message: str
    time: datetime


@dataclass(frozen=True)
class PostedNotice:
    """A notice as the cockpit shows it.

    Attributes:
        id: unique on the board (``BUNDLE-VERSION-N``).
        bundle: the bundle's name.
        version: its version.
        notice: the signed notice.
        consent_required: the driver must answer before the update starts.
        posted: when it was posted.
        deadline: when the agent stops waiting for an answer.
        answer: the driver's answer, once given.
        result: the update's result, once told.
    """

    id: str
    bundle: str
    version: str
    notice: Notice
    consent_required: bool
    posted: datetime
    deadline: datetime
    answer: Answer | None = None
    result: UpdateResult | None = None


class ConsentChannel(Protocol):
    """How the agent reaches the cockpit."""

    def post(self, notice: PostedNotice) -> str:
        """Show a notice; returns its id on the board."""
        ...  # pragma: no cover - protocol

    def wait(self, notice_id: str, timeout_s: float, cancel: threading.Event) -> Answer | None:
        """The answer, once given; None when ``timeout_s`` passed or ``cancel`` was set first."""
        ...  # pragma: no cover - protocol

    def tell(self, notice_id: str, result: UpdateResult) -> None:
        """Tell the user how the update ended."""
        ...  # pragma: no cover - protocol


class NoticeBoard:
    """The notices of one vehicle, their answers and results; safe to use from several threads.

    Args:
        clock: the board's clock (UTC).
    """

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._notices: dict[str, PostedNotice] = {}
        self._changed = threading.Condition()
        self._version = 0
        self._numbers = itertools.count(1)
        self._listeners: list[Callable[[], None]] = []

    # -- the agent's side (ConsentChannel) ---------------------------------------------------------------------

    def post(self, notice: PostedNotice) -> str:
        """Show a notice (its id is chosen by the board)."""
        with self._changed:
            posted = replace(notice, id=f"{notice.bundle}-{notice.version}-{next(self._numbers)}")
            self._notices[posted.id] = posted
            self._trim()
            self._bump()
            return posted.id

    def wait(self, notice_id: str, timeout_s: float, cancel: threading.Event) -> Answer | None:
        """Wait for the answer (in slices, so that ``cancel`` is seen)."""
        deadline = self._clock().timestamp() + timeout_s
        with self._changed:
            while True:
                notice = self._notices.get(notice_id)
                if notice is None or notice.answer is not None:
                    return None if notice is None else notice.answer
                left = deadline - self._clock().timestamp()
                if left <= 0 or cancel.is_set():
                    return None
                self._changed.wait(min(left, _SLICE_S))

    def tell(self, notice_id: str, result: UpdateResult) -> None:
        """Record the update's result for the cockpit."""
        with self._changed:
            notice = self._notices.get(notice_id)
            if notice is not None:
                self._notices[notice_id] = replace(notice, result=result)
                self._bump()

    # -- the cockpit's side -------------------------------------------------------------------------------------

    def decide(self, notice_id: str, decision: Decision, by: str) -> PostedNotice:
        """Record the driver's answer.

        Raises:
            UnknownNoticeError: no such notice.
            ConsentError: it was answered already.
        """
        with self._changed:
            notice = self._notices.get(notice_id)
            if notice is None:
                raise UnknownNoticeError(f"no notice {notice_id!r} on the board")
            if notice.answer is not None:
                raise ConsentError(f"notice {notice_id} was answered already ({notice.answer.decision})")
            answered = replace(notice, answer=Answer(decision, by, self._clock()))
            self._notices[notice_id] = answered
            self._bump()
            return answered

    def get(self, notice_id: str) -> PostedNotice:
        """The notice of that id.

        Raises:
            UnknownNoticeError: there is none.
        """
        with self._changed:
            notice = self._notices.get(notice_id)
        if notice is None:
            raise UnknownNoticeError(f"no notice {notice_id!r} on the board")
        return notice

    def notices(self) -> tuple[int, list[PostedNotice]]:
        """The board's version and its notices, oldest first."""
        with self._changed:
            return self._version, list(self._notices.values())

    def listen(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` (from the changing thread) after every change; returns the unsubscriber."""
        with self._changed:
            self._listeners.append(listener)

        def stop() -> None:
            with self._changed, contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return stop

    def _bump(self) -> None:
        self._version += 1
        self._changed.notify_all()
        for listener in list(self._listeners):
            listener()

    def _trim(self) -> None:
        while len(self._notices) > MAX_NOTICES:
            done = [key for key, notice in self._notices.items() if notice.answer is not None]
            del self._notices[(done or list(self._notices))[0]]


_SLICE_S = 0.25  # how soon a waiting agent sees its cancel flag
