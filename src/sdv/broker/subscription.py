"""A subscriber's view of the broker: the latest datapoint of each subscribed signal, delivered in batches.

The broker offers each change under its lock (:meth:`Subscription._queue`), which keeps only the latest
datapoint per signal, so a slow subscriber holds at most one datapoint per signal and never delays a publisher.

Wake-ups: a subscription with a batch pending is woken once, whatever arrives before it takes the batch; a
publisher wakes all the subscriptions its batch concerns with one call into each event loop (:func:`wake`), not
one per subscription. While changes keep coming, a subscription's batches are at least its spacing apart (what
arrives in between is coalesced); after a quiet tick the next change is delivered at once.

Spacing is kept per event loop, not per subscription (:class:`_Releases`): a woken subscription whose spacing has
passed is released at once; the others wait for one timer of their loop, the earliest due among them, and all
that are due then are released together. Subscriptions woken by the same publish therefore answer in the same
turn of their loop, with one timer between them, not one each.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING

from sdv.types.signals import Datapoint

if TYPE_CHECKING:
    from sdv.broker.broker import Broker
    from sdv.broker.tick import TickGovernor

__all__ = ["Subscription", "wake"]


class Subscription:
    """A stream of batches of datapoints for a set of signals; iterate it with ``async for``.

    The first batch holds the current datapoint of every subscribed signal; later batches hold the signals that
    changed since the previous batch, each with its latest datapoint. With ``targets`` the datapoints are the
    actuators' target values (:meth:`Broker.target`) and a batch follows every recorded actuation.
    """

    def __init__(
        self,
        broker: Broker,
        paths: Sequence[str],
        min_interval_ms: float,
        loop: asyncio.AbstractEventLoop,
        *,
        client: str,
        targets: bool = False,
        ticks: TickGovernor | None = None,
    ) -> None:
        self.paths = tuple(dict.fromkeys(paths))
        self.targets = targets
        self.client = client
        self.min_interval = min_interval_ms / 1000.0
        self._ticks = ticks
        self.dropped = 0
        self.delivered = 0
        self._broker = broker
        self._loop = loop
        self._releases = _releases_of(loop)
        self._waiter: asyncio.Future[None] | None = None
        self._released = False
        self._pending: dict[str, Datapoint] = {}
        self._signalled = False
        self._closed = False
        self._last_batch = -math.inf
        self.holding = False
        """Whether the subscription was woken and is held back until its spacing has passed (coalescing)."""

    def _queue(self, path: str, datapoint: Datapoint) -> bool:
        """Queue a datapoint (the caller holds the broker lock).

        Returns:
            Whether the subscription must be woken (:func:`wake`): it had nothing pending.
        """
        pending = self._pending
        if path in pending:
            self.dropped += 1
        pending[path] = datapoint
        if self._signalled:
            return False
        self._signalled = True
        return True

    def _offer(self, path: str, datapoint: Datapoint) -> None:
        """Queue a datapoint and wake the subscription if needed (the caller holds the broker lock)."""
        if self._queue(path, datapoint):
            self._loop.call_soon_threadsafe(self._releases.release, (self,))

    def _release(self) -> None:
        """Let the subscription take its batch (on its loop)."""
        self._released = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def __aiter__(self) -> AsyncIterator[dict[str, Datapoint]]:
        return self

    async def __anext__(self) -> dict[str, Datapoint]:
        while not self._closed:
            if not self._released:
                self._waiter = self._loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
            with self._broker._lock:
                batch, self._pending = self._pending, {}
                self._signalled = False
                self._released = False
            if batch and not self._closed:
                self.delivered += len(batch)
                return batch
        raise StopAsyncIteration

    def close(self) -> None:
        """Stop the subscription; a waiting ``async for`` ends."""
        if self._closed:
            return
        self._closed = True
        self._broker._unsubscribe(self)
        self._loop.call_soon_threadsafe(self._release)

    def spacing(self) -> float:
        """The shortest time in seconds between two batches now: the subscriber's minimum interval, or the
        server's current tick (:class:`~sdv.broker.tick.TickGovernor`) if longer."""
        if self._ticks is None:
            return self.min_interval
        return max(self.min_interval, self._ticks.tick())

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed


class _Releases:
    """One event loop's woken subscriptions that wait for their spacing, and the one timer that releases them.

    Called only on that loop (from :func:`wake`'s and the timer's callbacks). It keeps no reference to the loop,
    so that the registry's entry for a loop goes with the loop.
    """

    def __init__(self) -> None:
        self._held: list[Subscription] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = math.inf

    def release(self, subscriptions: Iterable[Subscription]) -> None:
        """Release the subscriptions whose spacing has passed; hold the others until the earliest of them is due."""
        now = time.monotonic()
        earliest = math.inf
        held = self._held
        for subscription in subscriptions:
            due = subscription._last_batch + subscription.spacing()
            if due <= now or subscription._closed:
                # Spacing counts from the release, which is the same for all released together: they stay
                # due together on later rounds, whatever order their responses are then written in.
                subscription._last_batch = now
                subscription.holding = False
                subscription._release()
            else:
                subscription.holding = True
                held.append(subscription)
                earliest = min(earliest, due)
        if earliest < self._timer_due:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_due = earliest
            self._timer = asyncio.get_running_loop().call_later(earliest - now, self._due)

    def _due(self) -> None:
        self._timer = None
        self._timer_due = math.inf
        held, self._held = self._held, []
        self.release(held)


_RELEASES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Releases] = weakref.WeakKeyDictionary()


def _releases_of(loop: asyncio.AbstractEventLoop) -> _Releases:
    releases = _RELEASES.get(loop)
    if releases is None:
        releases = _RELEASES[loop] = _Releases()
    return releases


def wake(subscriptions: Iterable[Subscription]) -> None:
    """Wake subscriptions that :meth:`Subscription._queue` said must be: one call into each event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Subscription]] = {}
    for subscription in subscriptions:
        by_loop.setdefault(subscription._loop, []).append(subscription)
    for loop, group in by_loop.items():
        loop.call_soon_threadsafe(group[0]._releases.release, group)
