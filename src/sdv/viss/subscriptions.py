"""One VISS subscription: a broker subscription whose batches become VISS notifications for one client.

Invariants:

* The datapoints waiting for a client live in the broker's :class:`~sdv.broker.subscription.Subscription`,
  which keeps the latest one per signal: a subscription has at most one notification queued for the client, and
  takes the next batch from the broker only once that one is written. Nothing accumulates but one datapoint per
  subscribed signal, a notification carries the latest values rather than a queue of old ones, and a slow client
  delays no one else.
* ``timebased`` notifies every signal's latest datapoint once per period whether or not it changed; ``change``
  notifies a signal when its new value passes the filter against the value last notified; without a filter
  every change is notified. The first notification holds the current value of every signal.
* The first notification after the token that created the subscription expired is an ``expired_token`` error,
  and the subscription ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sdv.broker.access import NO_RIGHTS
from sdv.broker.subscription import Subscription
from sdv.errors import AuthenticationError
from sdv.types.signals import Datapoint
from sdv.viss.errors import VissError, viss_error
from sdv.viss.messages import ChangeFilter, EncodedDatapoints, viss_time

__all__ = ["Send", "SubscriptionPump"]

Send = Callable[[dict[str, Any] | str], Awaitable["asyncio.Future[None]"]]
"""Queues one message (an object, or its JSON text) for the client, waiting while its send queue is full; the
future is done once the message is written."""


class SubscriptionPump:
    """Feeds one broker subscription to a client as VISS ``subscription`` messages, in a task of its own.

    Args:
        subscription_id: the id the client unsubscribes with.
        subscription: the broker subscription (closed when the pump ends).
        send: queues a message for the client.
        expires: when the subscribing token expires (seconds since the epoch).
        period_ms: a timebased subscription's period, or None.
        change: a change subscription's filter, or None.
        encoded: the connection's (the server's) datapoint texts; None: one of its own.
    """

    def __init__(
        self,
        subscription_id: str,
        subscription: Subscription,
        send: Send,
        *,
        expires: float,
        period_ms: int | None = None,
        change: ChangeFilter | None = None,
        encoded: EncodedDatapoints | None = None,
    ) -> None:
        self.subscription_id = subscription_id
        self._subscription = subscription
        self._send = send
        self._expires = expires
        self._period_s = period_ms / 1000 if period_ms is not None else None
        self._change = change
        self._notified: dict[str, Datapoint] = {}
        self._encoded = encoded or EncodedDatapoints()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start delivering (from the event loop that owns the subscription)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"viss-{self.subscription_id}")

    async def stop(self) -> None:
        """End the subscription: no further message is sent."""
        self._subscription.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        try:
            if self._period_s is not None:
                await self._timebased(self._period_s)
            else:
                async for batch in self._subscription:
                    if not await self._notify(self._passing(batch)):
                        return
        finally:
            self._subscription.close()

    def _passing(self, batch: dict[str, Datapoint]) -> dict[str, Datapoint]:
        if self._change is None:
            return batch
        passing = {}
        for path, datapoint in batch.items():
            last = self._notified.get(path)
            if last is None or self._change.passes(last.value, datapoint.value):
                passing[path] = datapoint
        return passing

    async def _timebased(self, period_s: float) -> None:
        latest: dict[str, Datapoint] = await anext(self._subscription)

        async def absorb() -> None:
            async for batch in self._subscription:
                latest.update(batch)

        absorber = asyncio.get_running_loop().create_task(absorb())
        loop = asyncio.get_running_loop()
        try:
            due = loop.time()
            while await self._notify(dict(latest)):
                # The period is the feature: a notification every period_s, ticks missed while the client's
                # queue was full are skipped rather than sent late in a burst.
                due += period_s
                now = loop.time()
                if due < now:
                    due = now + period_s - (now - due) % period_s
                await asyncio.sleep(due - now)
        finally:
            absorber.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await absorber

    async def _notify(self, entries: dict[str, Datapoint]) -> bool:
        """Send a notification of ``entries`` (none: nothing); False once the subscription has ended."""
        if not entries:
            return True
        if time.time() >= self._expires:
            error = viss_error(AuthenticationError("the token has expired"), NO_RIGHTS)
            await self._send(self.error_message(error))
            return False
        self._notified.update(entries)
        written = await self._send(self._encoded.notification(self.subscription_id, entries))
        await written  # meanwhile the broker keeps the latest value of each signal
        return True

    def error_message(self, error: VissError) -> dict[str, Any]:
        """A ``subscription`` message carrying ``error`` (the subscription ends)."""
        return {
            "action": "subscription",
            "subscriptionId": self.subscription_id,
            "error": error.as_json(),
            "ts": viss_time(),
        }
