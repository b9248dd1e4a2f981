"""Waiting on a state in the tests when nothing announces it: poll against a generous deadline, never a count.

A test first waits on an event where the code under test offers one (a stream's next message, a process's output
line, an :class:`asyncio.Event`); these helpers are for the states only polling can see (a file's content, a
server's snapshot). The deadline is long because a loaded machine is slow, not because the state takes that long:
a passing test returns as soon as the state holds, and a failing one says what it waited for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["DEADLINE_S", "wait_until", "wait_until_async"]

DEADLINE_S = 60.0
"""Seconds a test waits for a state before it fails."""

_POLL_S = 0.01
T = TypeVar("T")


def wait_until(predicate: Callable[[], T], *, what: str, timeout_s: float = DEADLINE_S) -> T:
    """The first truthy value of ``predicate()``, asked until ``timeout_s`` passed; fails naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:g} s for {what}")
        time.sleep(_POLL_S)
    return result


async def wait_until_async(
    predicate: Callable[[], Awaitable[T]], *, what: str, timeout_s: float = DEADLINE_S
) -> T:
    """As :func:`wait_until` for a coroutine predicate (a call to a server), without blocking the event loop."""
    deadline = time.monotonic() + timeout_s
    while not (result := await predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:g} s for {what}")
        await asyncio.sleep(_POLL_S)
    return result
