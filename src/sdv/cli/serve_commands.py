"""``sdv serve``: the vehicle's signals over gRPC (KUKSA ``kuksa.val`` v2 and v1), with the HAL running.

Without arguments it serves the example vehicle, replaying the demo drive in a loop in real time, on
127.0.0.1:55555. Once listening it prints ``sdv serve: listening on ADDRESS:PORT`` on standard output (the bound
port, also for ``--port 0``). SIGTERM and SIGINT stop it cleanly with exit code 0: the server stops, then the HAL's
reader threads. A bad profile or an address that cannot be bound ends it with exit code 2 and one line on
standard error, as does a bus configuration that can never work (an unknown python-can interface); a bus that is
down at start or fails later is retried with backoff while the server serves on (``sdv.hal.runtime``).

Security (see docs/security.md): ``--tls-cert``/``--tls-key`` serve TLS, ``--tls-client-ca`` demands client
certificates from that CA, ``--jwt-public-key`` checks a bearer token on every call. A non-loopback address
without TLS or tokens is refused unless ``--insecure`` is given; ``--limits FILE`` (YAML or TOML) replaces the
default limits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from sdv.api.security import ServerSecurity
from sdv.api.server import DEFAULT_ADDRESS, DEFAULT_PORT, SdvServer
from sdv.api.tokens import AUDIENCE
from sdv.broker import Broker, HalBridge, Limits
from sdv.cli.settings import load_settings
from sdv.hal.profile import ServicesConfig
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import load_vehicle
from sdv.resources import demo_profile

__all__ = ["register"]

_LOG = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sdv serve`` to the ``sdv`` parser."""
    serve = subparsers.add_parser(
        "serve", help="serve the vehicle's signals over gRPC (KUKSA kuksa.val v2 and v1)"
    )
    serve.add_argument(
        "--profile", type=Path, metavar="FILE", help="vehicle profile (default: the example vehicle)"
    )
    serve.add_argument(
        "--address", default=DEFAULT_ADDRESS, help=f"address to listen on (default {DEFAULT_ADDRESS})"
    )
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    security = serve.add_argument_group("security (docs/security.md)")
    security.add_argument("--tls-cert", type=Path, metavar="FILE", help="server certificate chain (PEM)")
    security.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    security.add_argument(
        "--tls-client-ca",
        type=Path,
        metavar="FILE",
        help="require client certificates signed by this CA (PEM)",
    )
    security.add_argument(
        "--jwt-public-key",
        type=Path,
        metavar="FILE",
        help="check a bearer token signed by this key's private half on every call (PEM: RSA, P-256, Ed25519)",
    )
    security.add_argument(
        "--jwt-audience", default=AUDIENCE, help=f"the audience tokens must name (default {AUDIENCE})"
    )
    security.add_argument("--jwt-issuer", help="the issuer tokens must name (default: any)")
    security.add_argument(
        "--insecure",
        action="store_true",
        help="allow plaintext or no token checks on an address other machines reach (logs a warning)",
    )
    serve.add_argument(
        "--limits", type=Path, metavar="FILE", help="limits (YAML or TOML; fields as in docs/security.md)"
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        print(f"sdv serve: --port {args.port} is not a TCP port (0 to 65535)", file=sys.stderr)
        return 2
    # SecurityConfigError, ProfileError: reported by the entry point with exit code 2, before anything starts
    security = ServerSecurity.from_files(
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        jwt_public_key=args.jwt_public_key,
        jwt_audience=args.jwt_audience,
        jwt_issuer=args.jwt_issuer,
        insecure=args.insecure,
    )
    limits = load_settings(args.limits, Limits) if args.limits else Limits()
    profile: Path = args.profile or demo_profile()
    vehicle = load_vehicle(profile)
    security.check_address(args.address)  # refuses an open non-loopback address, warns of what is open
    bridge = HalBridge(Hal(vehicle), limits)
    broker = bridge.broker
    bridge.start()  # the HAL's buses into the broker; the HAL provides every actuator
    try:
        actuators = [
            path for path, signal_config in vehicle.signals.items() if signal_config.kind == "actuator"
        ]
        _LOG.info(
            "serving profile %s (%s): %d signals, %d actuators, buses %s",
            vehicle.config.name,
            profile,
            len(vehicle.signals),
            len(actuators),
            ", ".join(vehicle.buses),
        )
        return asyncio.run(_run(broker, args.address, args.port, vehicle.config.services, security))
    finally:
        bridge.stop()


async def _run(
    broker: Broker, address: str, port: int, services: ServicesConfig, security: ServerSecurity
) -> int:
    server = SdvServer(broker, address=address, port=port, services=services, security=security)
    await server.start()  # BindError: reported by the entry point with exit code 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    print(f"sdv serve: listening on {server.target}", flush=True)
    try:
        await stop.wait()
        _LOG.info("stopping")
    finally:
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signal_number)
        await server.stop()
    return 0
