"""Running a server command until SIGTERM or SIGINT: the one loop ``sdv serve`` and ``sdv ota agent`` share."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Protocol

__all__ = ["Startable", "serve_until_signalled"]

_LOG = logging.getLogger(__name__)


class Startable(Protocol):
    """A server with the project's start/stop contract."""

    @property
    def target(self) -> str: ...

    async def start(self) -> int: ...

    async def stop(self) -> None: ...


async def serve_until_signalled(server: Startable, command: str) -> int:
    """Start ``server``, print ``COMMAND: listening on ADDRESS:PORT``, serve until SIGTERM or SIGINT, stop.

    Returns:
        0, the exit code of a clean stop.

    Raises:
        BindError: the address cannot be bound (the entry point reports it with exit code 2).
    """
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    print(f"{command}: listening on {server.target}", flush=True)
    try:
        await stop.wait()
        _LOG.info("stopping")
    finally:
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signal_number)
        await server.stop()
    return 0
