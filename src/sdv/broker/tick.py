"""The subscription tick, adapted to the server's load.

While changes keep coming, a subscription answers at most once per tick (:mod:`sdv.broker.subscription`); every
response costs the server about the same whatever it carries, so the tick is what trades CPU for latency. The
:class:`TickGovernor` keeps it at ``subscription_tick_ms`` while the process uses less than
``subscription_cpu_budget`` of a core, lengthens it step by step, up to ``subscription_tick_max_ms``, while the
process uses more, and shortens it again once the load has fallen below ``_LOW_WATER`` of the budget (the gap
keeps it from swinging at the border). Load is the process's CPU time (all threads) over windows of
``subscription_load_window_s``: decoding, serving and everything else the process does, so a process busy
decoding a whole vehicle sends fewer, fuller responses and keeps up.

Invariants:

* The tick is always within ``[subscription_tick_ms, subscription_tick_max_ms]``; with the two equal, or a
  ``subscription_tick_ms`` of 0 (every batch is sent), it never changes.
* It moves by at most one step (a quarter of that range) per window, so one busy window lengthens it a little,
  not to the maximum.
* Pure: the clocks are arguments; nothing runs on its own. The broker asks for the tick when it schedules
  responses, which is also when a window that has passed is evaluated.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sdv.broker.config import Limits

__all__ = ["TickGovernor"]

_LOG = logging.getLogger(__name__)
_STEPS = 4
"""Steps between the shortest and the longest tick."""
_LOW_WATER = 0.8
"""The tick shortens again once the load is below this fraction of the budget."""


class TickGovernor:
    """The current subscription tick in seconds: :meth:`tick`.

    Args:
        limits: ``subscription_tick_ms``, ``subscription_tick_max_ms``, ``subscription_cpu_budget`` and
            ``subscription_load_window_s``.
        cpu_clock: CPU seconds the process has used (:func:`time.process_time`).
        now: the monotonic clock the window is measured on.
    """

    def __init__(
        self,
        limits: Limits,
        cpu_clock: Callable[[], float] = time.process_time,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shortest = limits.subscription_tick_ms / 1000.0
        # A tick of 0 asks for every batch: no coalescing, whatever the load.
        self.longest = max(self.shortest, limits.subscription_tick_max_ms / 1000.0) if self.shortest else 0.0
        self._budget = limits.subscription_cpu_budget
        self._window = limits.subscription_load_window_s
        self._cpu_clock = cpu_clock
        self._now = now
        self._step = 0
        self._adaptive = self.longest > self.shortest
        self._evaluating = threading.Lock()  # subscriptions of several event loops may ask at once
        self._window_started = now()
        self._cpu_at_start = cpu_clock() if self._adaptive else 0.0
        self.load = 0.0
        """CPU of the process over the last complete window, as a fraction of one core."""

    def tick(self) -> float:
        """The tick in seconds; evaluates the load window first if it has passed."""
        if self._adaptive:
            elapsed = self._now() - self._window_started
            if elapsed >= self._window and self._evaluating.acquire(blocking=False):
                try:
                    elapsed = self._now() - self._window_started  # another loop may have judged it meanwhile
                    if elapsed >= self._window:
                        self._evaluate(elapsed)
                finally:
                    self._evaluating.release()
        return self._current()

    def _current(self) -> float:
        return self.shortest + (self.longest - self.shortest) * self._step / _STEPS

    def _evaluate(self, elapsed: float) -> None:
        cpu = self._cpu_clock()
        self.load = (cpu - self._cpu_at_start) / elapsed
        self._cpu_at_start = cpu
        self._window_started += elapsed
        step = self._step
        if self.load > self._budget:
            step = min(_STEPS, step + 1)
        elif self.load < self._budget * _LOW_WATER:
            step = max(0, step - 1)
        if step != self._step:
            self._step = step
            _LOG.debug(
                "subscription tick %.2f ms: the process used %.0f %% of a core (budget %.0f %%)",
                self._current() * 1000,
                self.load * 100,
                self._budget * 100,
            )
