"""What the client commands (``sdv get/set/subscribe/list/monitor``) share: the server flags and the client.

Invariants:

* ``--server`` wins over ``$SDV_SERVER``, which wins over the default address; the port defaults to the signal
  server's (docs/cli.md).
* A request names at most :data:`PATHS_PER_REQUEST` paths, below the broker's default limit of 1000.
* A :class:`Reconnection` retries only a connection lost after the command started (:attr:`Reconnection.started`):
  a server that cannot be reached at the start is an error (exit code 3), never a wait.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence

from sdv.cli.security_options import ENV_SERVER, add_connection_arguments, connection
from sdv.client import DEFAULT_SERVER, VehicleClient
from sdv.client.address import SIGNAL_SERVER_PORT
from sdv.client.errors import ServerUnreachableError

__all__ = [
    "PATHS_PER_REQUEST",
    "Reconnection",
    "add_reconnect_argument",
    "chunks",
    "server_arguments",
    "vehicle_client",
]

PATHS_PER_REQUEST = 500
"""The most paths one request of a client command names."""
# The waits between attempts to reach a lost server (the SDK's policy), capped low: someone watches the terminal.
_RECONNECT_S = (0.25, 2.0)


def server_arguments() -> argparse.ArgumentParser:
    """The parent parser of the ``--server`` and connection (TLS, token) flags."""
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument(
        "--server",
        metavar="HOST[:PORT]",
        help=f"the server to talk to: HOST[:PORT], grpc://HOST[:PORT] or grpcs://HOST[:PORT] (TLS); "
        f"default ${ENV_SERVER}, else {DEFAULT_SERVER}; the port defaults to {SIGNAL_SERVER_PORT}",
    )
    add_connection_arguments(server)
    return server


def chunks(paths: Sequence[str]) -> list[Sequence[str]]:
    """``paths`` in requests of at most :data:`PATHS_PER_REQUEST`."""
    return [paths[start : start + PATHS_PER_REQUEST] for start in range(0, len(paths), PATHS_PER_REQUEST)]


def vehicle_client(args: argparse.Namespace) -> VehicleClient:
    """A client of the server the flags (or ``$SDV_SERVER``) name; sets ``args.server`` to the address used."""
    if args.server is None:
        args.server = os.environ.get(ENV_SERVER, "").strip() or DEFAULT_SERVER
    target, security = connection(args, args.server, SIGNAL_SERVER_PORT)
    return VehicleClient(target, security=security)


def add_reconnect_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-reconnect``: a lost connection ends the command (exit code 3) instead of being bridged."""
    parser.add_argument(
        "--no-reconnect",
        dest="reconnect",
        action="store_false",
        help="end with exit code 3 when the connection is lost, instead of reconnecting until the server is back",
    )


class Reconnection:
    """Runs a command's session on a client and bridges a lost connection as the SDK's subscriptions do.

    The waits between attempts are :class:`~sdv.sdk.reconnect.ReconnectPolicy`'s (capped at 2 s, never giving
    up); the SDK and its pydantic models load only once a connection was lost.

    Attributes:
        started: set by the session once the command is under way; only then is a lost connection retried.
        lost: the error the connection was lost with, until :meth:`resumed` says it is back.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self.started = False
        self.lost: ServerUnreachableError | None = None

    async def run(
        self,
        session: Callable[[VehicleClient], Awaitable[None]],
        on_lost: Callable[[ServerUnreachableError], None],
    ) -> None:
        """``session(client)`` until it returns; ``on_lost`` is called once per lost connection.

        Raises:
            ServerUnreachableError: before :attr:`started`, or with ``--no-reconnect``.
        """
        attempt = 0
        policy = None
        while True:
            try:
                async with vehicle_client(self._args) as client:
                    await session(client)
                return
            except ServerUnreachableError as error:
                if not self.started or not getattr(self._args, "reconnect", True):
                    raise
                if policy is None:
                    from sdv.sdk.reconnect import ReconnectPolicy  # noqa: PLC0415 - see the class docstring

                    policy = ReconnectPolicy(initial_delay=_RECONNECT_S[0], max_delay=_RECONNECT_S[1])
                if self.lost is None:
                    self.lost, attempt = error, 0
                    on_lost(error)
                await asyncio.sleep(policy.delay(attempt))
                attempt += 1

    def resumed(self) -> bool:
        """Whether the connection had been lost; it counts as back from now on."""
        was_lost, self.lost = self.lost is not None, None
        return was_lost
