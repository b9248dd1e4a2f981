"""Trusted time: the time expiry is checked against, which an attacker cannot turn back.

An ECU's real-time clock is not a secure time source: it may be reset to its epoch by a flat battery or set
back by an attacker to make an expired (frozen) bundle look valid again. Uptane's full verification therefore
checks expiry against the latest time the ECU has *securely* seen. Here that floor is persisted in a small
state file and raised by times that come from signed sources (the ``created`` time of every bundle that
verified).

Invariants:

* the floor never goes backwards: :meth:`TimeState.advanced` keeps the later of the old floor and the new
  time;
* the trusted time is ``max(clock, floor)``: a clock behind the floor is not trusted (and logged), one ahead
  of it is used as is but never written to the floor, so a clock set into the future cannot lock the ECU out
  later.

This module performs no I/O; :mod:`sdv.ota.bundle.store` reads and writes the state atomically.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from sdv.ota.bundle.canonical import UtcTime, format_time

__all__ = ["TIME_STATE_TYPE", "TimeState", "trusted_now", "whole_seconds"]

_logger = logging.getLogger(__name__)

TIME_STATE_TYPE = "sdv-ota/time/v1"
"""The ``type`` of a persisted time state."""


def whole_seconds(moment: datetime) -> datetime:
    """``moment`` in UTC, truncated to whole seconds (the resolution of signed times)."""
    return moment.astimezone(UTC).replace(microsecond=0)


class TimeState(BaseModel):
    """The persisted floor of the trusted time.

    Attributes:
        type: the document type, ``"sdv-ota/time/v1"``.
        latest: the latest time securely seen.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["sdv-ota/time/v1"] = "sdv-ota/time/v1"
    latest: UtcTime

    def advanced(self, seen: datetime) -> TimeState:
        """The state after securely seeing ``seen``: the floor moves forward, never back."""
        seen = whole_seconds(seen)
        if seen <= self.latest:
            return self
        return TimeState(latest=seen)


def trusted_now(clock: datetime, state: TimeState | None) -> datetime:
    """The time to check expiry against.

    Args:
        clock: the ECU's clock reading (aware).
        state: the persisted floor, or ``None`` if the ECU has seen no secure time yet.

    Returns:
        The later of the clock and the floor, in whole seconds.
    """
    now = whole_seconds(clock)
    if state is None or now >= state.latest:
        return now
    _logger.warning(
        "clock reads %s, before the latest securely seen time %s; using the latter",
        format_time(now),
        format_time(state.latest),
    )
    return state.latest
