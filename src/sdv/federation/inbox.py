"""The hand-off from zenoh's callback threads to the asyncio loop that owns the broker (thread-safe, bounded).

A zenoh callback only offers the raw bytes it received; the loop decodes, checks and publishes them. The inbox
keeps the latest payload per key, so that its memory is bounded by the number of keys whatever the rate, and
schedules one drain on the loop however many payloads arrive before it runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

__all__ = ["Inbox"]


class Inbox:
    """Latest payload per key, drained on ``loop`` by ``consume``.

    Args:
        loop: the event loop ``consume`` runs on.
        consume: called on the loop with every pending ``{key: payload}``.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, consume: Callable[[dict[str, bytes]], None]) -> None:
        self._loop = loop
        self._consume = consume
        self._lock = threading.Lock()
        self._pending: dict[str, bytes] = {}
        self.replaced = 0
        """Payloads overwritten by a newer one for the same key before the loop took them."""

    def offer(self, key: str, payload: bytes) -> None:
        """Keep ``payload`` as the latest for ``key`` (any thread); never blocks on the loop."""
        with self._lock:
            first = not self._pending
            if key in self._pending:
                self.replaced += 1
            self._pending[key] = payload
        if first and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        if pending:
            self._consume(pending)
