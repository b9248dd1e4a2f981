"""A subscriber's view of the broker: the latest datapoint of each subscribed signal, delivered in batches.

The broker offers each change under its lock (:meth:`Subscription._queue`), which keeps only the latest
datapoint per signal, so a slow subscriber holds at most one datapoint per signal and never delays a publisher.

Wake-ups: a subscription with a batch pending is woken once, whatever arrives before it takes the batch; a
publisher wakes all the subscriptions its batch concerns with one call into each event loop (:func:`wake`), not
one per subscription. While changes keep coming, a subscription's batches are at least ``tick`` apart (what
arrives in between is coalesced); after a quiet tick the next change is delivered at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import TYPE_CHECKING

from sdv.types.signals import Datapoint

if TYPE_CHECKING:
    from sdv.broker.broker import Broker

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
        tick_ms: float = 0.0,
    ) -> None:
        self.paths = tuple(dict.fromkeys(paths))
        self.targets = targets
        self.client = client
        self.min_interval = min_interval_ms / 1000.0
        self._spacing = max(self.min_interval, tick_ms / 1000.0)
        self.dropped = 0
        self.delivered = 0
        self._broker = broker
        self._loop = loop
        self._event = asyncio.Event()
        self._pending: dict[str, Datapoint] = {}
        self._signalled = False
        self._closed = False
        self._last_batch = -float("inf")
        self.holding = False
        """Whether the subscription was woken and holds its batch back until its tick has passed (coalescing)."""

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
            self._loop.call_soon_threadsafe(self._event.set)

    def __aiter__(self) -> AsyncIterator[dict[str, Datapoint]]:
        return self

    async def __anext__(self) -> dict[str, Datapoint]:
        while not self._closed:
            await self._event.wait()
            if self._spacing:
                wait = self._last_batch + self._spacing - time.monotonic()
                if wait > 0:
                    self.holding = True
                    try:
                        await asyncio.sleep(wait)
                    finally:
                        self.holding = False
            with self._broker._lock:
                batch, self._pending = self._pending, {}
                self._signalled = False
                self._event.clear()
            if batch and not self._closed:
                self._last_batch = time.monotonic()
                self.delivered += len(batch)
                return batch
        raise StopAsyncIteration

    def close(self) -> None:
        """Stop the subscription; a waiting ``async for`` ends."""
        if self._closed:
            return
        self._closed = True
        self._broker._unsubscribe(self)
        self._loop.call_soon_threadsafe(self._event.set)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed


def wake(subscriptions: Iterable[Subscription]) -> None:
    """Wake subscriptions that :meth:`Subscription._queue` said must be: one call into each event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Subscription]] = {}
    for subscription in subscriptions:
        by_loop.setdefault(subscription._loop, []).append(subscription)
    for loop, group in by_loop.items():
        loop.call_soon_threadsafe(_set_events, group)


def _set_events(subscriptions: list[Subscription]) -> None:
    for subscription in subscriptions:
        subscription._event.set()
