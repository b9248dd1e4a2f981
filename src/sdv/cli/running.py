"""Running a server command until SIGTERM or SIGINT: the one loop ``sdv serve`` and ``sdv ota agent`` share."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from typing import Protocol

__all__ = ["Startable", "serve_until_signalled"]

_LOG = logging.getLogger(__name__)


class Startable(Protocol):
    """A server with the project's start/stop contract."""

    @property
    def target(self) -> str: ...

    async def start(self) -> int: ...

    async def stop(self) -> None: ...


async def serve_until_signalled(
    server: Startable, command: str, *, beside: Sequence[tuple[str, Startable]] = ()
) -> int:
    """Start ``server``, print ``COMMAND: listening on ADDRESS:PORT``, serve until SIGTERM or SIGINT, stop.

    Args:
        server: the main server.
        command: the command's name, leading each line printed.
        beside: further servers in the same event loop, each with its name: started after ``server`` (each
            printing ``COMMAND: NAME listening on ADDRESS:PORT`` after the main line), stopped before it.

    Returns:
        0, the exit code of a clean stop.

    Raises:
        BindError: an address cannot be bound (the entry point reports it with exit code 2).
    """
    await server.start()
    started: list[Startable] = []
    try:
        for _, other in beside:
            await other.start()
            started.append(other)
    except BaseException:
        for other in reversed(started):
            await other.stop()
        await server.stop()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    print(f"{command}: listening on {server.target}", flush=True)
    for name, other in beside:
        print(f"{command}: {name} listening on {other.target}", flush=True)
    try:
        await stop.wait()
        _LOG.info("stopping")
    finally:
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signal_number)
        for other in reversed(started):
            await other.stop()
        await server.stop()
    return 0
