"""Timing a change seen through a subscription: what the federation tests and ``bench/bench_federation.py`` share.

:func:`seconds_until` subscribes to signals on one ECU, does something to another (kills it, cuts its link,
starts it) once the subscription delivered its first batch, and measures how long until the latest datapoints
satisfy a condition (all not available, all back).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence

from sdv.client import VehicleClient
from sdv.types.signals import Datapoint

__all__ = ["all_available", "all_unavailable", "seconds_until", "wait_for", "watch"]


async def watch(
    client: VehicleClient, paths: Sequence[str], holds: Callable[[dict[str, Datapoint]], bool]
) -> AsyncIterator[dict[str, Datapoint]]:
    """Latest datapoints of ``paths``, updated until ``holds`` is true."""
    latest: dict[str, Datapoint] = {}
    async with contextlib.aclosing(client.subscribe(paths)) as stream:
        async for batch in stream:
            latest.update(batch)
            yield latest
            if holds(latest):
                return


async def seconds_until(
    client: VehicleClient,
    paths: Sequence[str],
    holds: Callable[[dict[str, Datapoint]], bool],
    action: Callable[[], None],
    timeout_s: float,
) -> float:
    """Subscribe, do ``action``, and measure how long from just before it until ``holds`` is true of the latest
    datapoints."""
    started = 0.0
    async with asyncio.timeout(timeout_s + 60):  # the extra minute: subscribing on a loaded machine
        async for latest in watch(client, paths, holds):
            if not started:
                started = time.monotonic()
                action()
            elif holds(latest):
                return time.monotonic() - started
    raise AssertionError("the subscription ended")


async def wait_for(
    client: VehicleClient,
    paths: Sequence[str],
    holds: Callable[[dict[str, Datapoint]], bool],
    timeout_s: float = 60,
) -> None:
    """Until ``holds`` is true of the latest datapoints of ``paths`` (at once if it already is)."""
    async with asyncio.timeout(timeout_s):
        async for _ in watch(client, paths, holds):
            pass


def all_unavailable(paths: Sequence[str]) -> Callable[[dict[str, Datapoint]], bool]:
    """A condition: every one of ``paths`` has a datapoint, without value."""
    return lambda latest: all(latest.get(path) is not None and latest[path].value is None for path in paths)


def all_available(paths: Sequence[str]) -> Callable[[dict[str, Datapoint]], bool]:
    """A condition: every one of ``paths`` has a value."""
    return lambda latest: all(
        latest.get(path) is not None and latest[path].value is not None for path in paths
    )
