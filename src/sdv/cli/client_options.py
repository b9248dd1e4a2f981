"""What the client commands (``sdv get/set/subscribe/list/monitor``) share: the server flags and the client.

Invariants:

* ``--server`` wins over ``$SDV_SERVER``, which wins over the default address; the port defaults to the signal
  server's (docs/cli.md).
* A request names at most :data:`PATHS_PER_REQUEST` paths, below the broker's default limit of 1000.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from sdv.cli.security_options import ENV_SERVER, add_connection_arguments, connection
from sdv.client import DEFAULT_SERVER, VehicleClient
from sdv.client.address import SIGNAL_SERVER_PORT

__all__ = ["PATHS_PER_REQUEST", "chunks", "server_arguments", "vehicle_client"]

PATHS_PER_REQUEST = 500
"""The most paths one request of a client command names."""


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
