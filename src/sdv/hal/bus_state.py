"""The state of each bus: up, down and being retried, or at the end of its recording. Pure: no I/O, no clock.

:class:`BusStateMachine` records what happened to one bus (opened, failed, ended) at times its owner passes in,
and answers with a :class:`BusStatus` snapshot. The HAL's reader threads do the I/O and the waiting.

Invariants:

* ``CONNECTING`` only before the first attempt to open; afterwards the bus is ``UP`` (its source is open),
  ``DOWN`` (closed, waiting ``retry_delay`` seconds before the next attempt) or ``ENDED`` (a recording played
  once reached its end; nothing is retried).
* Every failure, of an open bus or of an attempt to reopen one, schedules the next attempt after the
  :class:`~sdv.hal.config.BusReopenPolicy` delay for the number of attempts failed in a row; the count restarts
  when a reopened bus has delivered frames, so that a bus that opens and fails at once keeps backing off.
* ``reconnects`` counts the times a bus came back up after a failure (including a failure at start).
"""

from __future__ import annotations

import enum
import random
from collections import deque
from dataclasses import dataclass

from sdv.hal.config import BusReopenPolicy

__all__ = ["BusState", "BusStateMachine", "BusStatus"]

_DELAY_HISTORY = 32  # past the max_delay_s cap every delay is the same: a short history tells the growth


class BusState(enum.Enum):
    """Where a bus stands."""

    CONNECTING = "CONNECTING"
    """Not opened yet."""
    UP = "UP"
    """Open: frames flow (or the bus is silent, which freshness monitoring reports per message)."""
    DOWN = "DOWN"
    """Failed; closed and reopened after a backoff delay. Its signals are not available."""
    ENDED = "ENDED"
    """A recording played once reached its end."""


@dataclass(frozen=True)
class BusStatus:
    """A snapshot of one bus's state.

    Attributes:
        state: where the bus stands.
        since: when it entered that state (the owner's clock).
        error: the last failure, kept after the bus recovered (``None`` if it never failed).
        attempts: attempts to reopen that failed in a row in the current outage.
        reconnects: times the bus came back up after a failure.
        retry_delay: while ``DOWN``, the seconds between the last failure and the next attempt.
        next_retry: while ``DOWN``, when the next attempt is due (the owner's clock).
        retry_delays: the delays scheduled since the bus last delivered frames, oldest first (at most 32).
    """

    state: BusState
    since: float
    error: str | None = None
    attempts: int = 0
    reconnects: int = 0
    retry_delay: float | None = None
    next_retry: float | None = None
    retry_delays: tuple[float, ...] = ()

    def describe(self, now: float) -> str:
        """``UP``, ``ENDED`` or ``DOWN: <error>, retrying in 2.0 s`` as logs and errors show it."""
        if self.state is not BusState.DOWN:
            return self.state.name
        retry = (
            f", retrying in {max(0.0, self.next_retry - now):.1f} s" if self.next_retry is not None else ""
        )
        return f"DOWN: {self.error}{retry}"


class BusStateMachine:
    """The state of one bus, moved by what its owner observed.

    Args:
        policy: the backoff between attempts to reopen.
        now: the time of creation (the state is ``CONNECTING`` since then).
        rng: the source of jitter (seeded in tests that need exact delays).
    """

    def __init__(self, policy: BusReopenPolicy, now: float, rng: random.Random | None = None) -> None:
        self.policy = policy
        self._rng = rng or random.Random()
        self._state = BusState.CONNECTING
        self._since = now
        self._error: str | None = None
        self._attempts = 0
        self._reconnects = 0
        self._retry_delay: float | None = None
        self._next_retry: float | None = None
        self._delays: deque[float] = deque(maxlen=_DELAY_HISTORY)
        self._failed_before = False

    @property
    def state(self) -> BusState:
        """The current state."""
        return self._state

    def status(self) -> BusStatus:
        """A snapshot of the current state."""
        return BusStatus(
            self._state,
            self._since,
            self._error,
            self._attempts,
            self._reconnects,
            self._retry_delay,
            self._next_retry,
            tuple(self._delays),
        )

    def opened(self, now: float) -> BusStatus:
        """The bus's source is open."""
        if self._failed_before:
            self._reconnects += 1
        self._attempts = 0  # the outage is over; the backoff history stays until frames arrive
        self._enter(BusState.UP, now)
        return self.status()

    def delivered(self) -> None:
        """The open bus delivered frames: the next failure waits the initial delay again."""
        if self._delays:
            self._delays.clear()

    def failed(self, error: str, now: float) -> BusStatus:
        """Opening or reading the bus failed with ``error``: it is closed and reopened after a delay.

        Returns:
            The new status; its ``retry_delay`` is how long to wait before the next attempt.
        """
        if self._state is BusState.DOWN:
            self._attempts += 1
        self._failed_before = True
        self._error = error
        if self._state is not BusState.DOWN:
            self._enter(BusState.DOWN, now)
        delay = self.policy.delay(len(self._delays), self._rng)
        self._delays.append(delay)
        self._retry_delay = delay
        self._next_retry = now + delay
        return self.status()

    def ended(self, now: float) -> BusStatus:
        """The bus's recording reached its end."""
        self._enter(BusState.ENDED, now)
        return self.status()

    def _enter(self, state: BusState, now: float) -> None:
        self._state = state
        self._since = now
        self._retry_delay = None
        self._next_retry = None
