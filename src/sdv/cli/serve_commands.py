"""``sdv serve``: the vehicle's signals over gRPC (KUKSA ``kuksa.val`` v2 and v1), with the HAL running.

Without arguments it serves the example vehicle, replaying the demo drive in a loop in real time, on
127.0.0.1:55555, with the shipped VSS overlay of its ``Vehicle.SDV`` signals as catalogue (the COVESA catalogue
is not shipped: ``--profile`` with ``--vss vss_release_4.0.json --vss OVERLAY`` checks the demo against VSS 4.0). ``--vss FILE [--vss OVERLAY ...]`` without ``--profile`` is the pure broker mode: no HAL, every
leaf of the VSS catalogue served with its metadata and open to outside providers, as the KUKSA databroker serves
its ``--vss`` file. With ``--profile`` too, the profile's signals stay the HAL's and the catalogue adds every other
VSS signal, open to providers. Once listening it prints ``sdv serve: listening on ADDRESS:PORT`` on standard output (the bound
port, also for ``--port 0``). SIGTERM and SIGINT stop it cleanly with exit code 0: the server stops, then the HAL's
reader threads. A bad profile or an address that cannot be bound ends it with exit code 2 and one line on
standard error, as does a bus configuration that can never work (an unknown python-can interface); a bus that is
down at start or fails later is retried with backoff while the server serves on (``sdv.hal.runtime``).

Security (see docs/security.md): ``--tls-cert``/``--tls-key`` serve TLS, ``--tls-client-ca`` demands client
certificates from that CA, ``--jwt-public-key`` checks a bearer token on every call. A non-loopback address
without TLS or tokens is refused unless ``--insecure`` is given; ``--limits FILE`` (YAML or TOML) replaces the
default limits.

VISS (docs/api.md, "VISS v2"): ``--viss`` also serves W3C VISS v2 over WebSocket and HTTP on ``--viss-port``
(default 8090), same address, TLS and tokens, in the same event loop; it prints ``sdv serve: VISS listening on
ADDRESS:PORT`` after the gRPC line. ``--viss-limits FILE`` replaces its limits (``sdv.viss.VissLimits``).

Update agent (docs/ota.md, "The agent inside sdv serve"): ``--ota-agent CONFIG`` runs the ECU's update agent in
the same process, reading the broker's signals directly and posting its notices to the cockpit board this server
serves; its ``sdv.ota.v1.Ota`` service listens on ``--ota-port`` (same address, TLS and tokens) and the line
``sdv serve: OTA agent listening on ADDRESS:PORT`` follows the gRPC line (and the VISS one).

Decode workers (docs/architecture.md, :mod:`sdv.hal.workers`): ``--decode-workers N|auto`` receives and decodes
the buses in worker processes; this process publishes what they decode and serves the clients. Without the option
the profile's ``hal.decode_workers`` counts (the rest of its ``hal:`` section counts either way).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from sdv.api.security import ServerSecurity
from sdv.api.server import DEFAULT_ADDRESS, DEFAULT_PORT, SdvServer
from sdv.broker import Broker, HalBridge, Limits
from sdv.broker.access import UNRESTRICTED
from sdv.cli.running import Startable, serve_until_signalled
from sdv.cli.security_options import add_server_security_arguments, server_security
from sdv.cli.settings import load_settings
from sdv.client.address import OTA_AGENT_PORT
from sdv.hal.profile import ServicesConfig
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import load_vehicle
from sdv.resources import demo_overlay, demo_profile, software_overlay
from sdv.viss.config import DEFAULT_VISS_PORT, VissLimits
from sdv.vss import load_catalogue

if TYPE_CHECKING:
    from sdv.federation import Federation
    from sdv.ota.agent.config import AgentConfig
    from sdv.ota.agent.consent import NoticeBoard
    from sdv.ota.agent.core import UpdateAgent

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
        "--vss",
        type=Path,
        action="append",
        metavar="FILE",
        help="VSS catalogue (vss-tools JSON); repeat for overlays, later files overlay earlier ones. Without "
        "--profile: a pure broker, every VSS signal provided by clients, no HAL",
    )
    serve.add_argument(
        "--address", default=DEFAULT_ADDRESS, help=f"address to listen on (default {DEFAULT_ADDRESS})"
    )
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    add_server_security_arguments(serve)
    serve.add_argument(
        "--limits", type=Path, metavar="FILE", help="limits (YAML or TOML; fields as in docs/security.md)"
    )
    serve.add_argument(
        "--viss",
        action="store_true",
        help="also serve W3C VISS v2 over WebSocket (subprotocol VISSv2) and HTTP, same address, TLS and tokens",
    )
    serve.add_argument(
        "--viss-port",
        type=int,
        default=DEFAULT_VISS_PORT,
        help=f"port of VISS with --viss (default {DEFAULT_VISS_PORT}; 0 picks a free one)",
    )
    serve.add_argument(
        "--viss-limits",
        type=Path,
        metavar="FILE",
        help="VISS limits (YAML or TOML; fields as in docs/api.md)",
    )
    serve.add_argument(
        "--ota-agent",
        type=Path,
        metavar="CONFIG",
        help="also run the ECU's update agent (its configuration, YAML) in this process, on the broker's signals",
    )
    serve.add_argument(
        "--ota-port",
        type=int,
        default=OTA_AGENT_PORT,
        help=f"port of the update agent with --ota-agent (default {OTA_AGENT_PORT}; 0 picks a free one)",
    )
    serve.add_argument(
        "--decode-workers",
        type=_workers,
        default=None,
        metavar="N|auto",
        help="receive and decode the buses in N worker processes (bus i in worker i mod N), so that a vehicle's "
        "traffic uses more than one core; auto: one per core but one, none for one bus or one core; 0: all in "
        "this process; default: the profile's hal.decode_workers (0 unless it says otherwise)",
    )
    serve.set_defaults(handler=_serve, log_level=logging.INFO)  # a service says what it serves


def _workers(text: str) -> int | Literal["auto"]:
    if text == "auto":
        return "auto"
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number of processes (0 or more) nor auto")
    return int(text)


def _serve(args: argparse.Namespace) -> int:
    for flag, port in (("--port", args.port), ("--viss-port", args.viss_port), ("--ota-port", args.ota_port)):
        if not 0 <= port <= 65535:
            print(f"sdv serve: {flag} {port} is not a TCP port (0 to 65535)", file=sys.stderr)
            return 2
    # SecurityConfigError, ProfileError, CatalogueError: reported by the entry point with exit code 2, before
    # anything starts
    security = server_security(args)
    limits = load_settings(args.limits, Limits) if args.limits else Limits()
    viss = _viss_settings(args)
    agent_config = _ota_agent_config(args)  # AgentConfigError: exit code 2, before anything starts
    catalogue = load_catalogue(args.vss) if args.vss else None
    if catalogue is not None and args.profile is None:
        security.check_address(args.address)
        broker = Broker.from_catalogue(catalogue, limits)
        _LOG.info(
            "serving the VSS catalogue %s without HAL: %d signals, open to providers",
            " + ".join(str(path) for path in args.vss),
            len(broker.list_metadata(access=UNRESTRICTED)),
        )
        with contextlib.ExitStack() as links:
            agent = _ota_agent(args, agent_config, broker, links)
            return asyncio.run(
                _run(broker, args.address, args.port, ServicesConfig(), security, viss=viss, agent=agent)
            )
    profile: Path = args.profile or demo_profile()
    # refuses a profile that contradicts the catalogue
    vehicle = load_vehicle(profile, catalogue=catalogue)
    if args.profile is None and catalogue is None:
        # The demo's own overlay alone: it describes the Vehicle.SDV signals; the rest of the demo follows VSS
        # 4.0, which is not shipped to check against (the tests check it)
        catalogue = load_catalogue(
            [demo_overlay(), software_overlay()]
        )  # and the update agent's Vehicle.Software
    security.check_address(args.address)  # refuses an open non-loopback address, warns of what is open
    hal_config = vehicle.config.hal
    if args.decode_workers is not None:  # the command line overrides the profile
        hal_config = hal_config.model_copy(update={"decode_workers": args.decode_workers})
    if hal_config.decode_workers == 0:
        hal = Hal(vehicle, config=hal_config)
    else:
        from sdv.hal.workers import make_hal  # noqa: PLC0415 - multiprocessing only for a server with workers

        hal = make_hal(vehicle, hal_config)
    bridge = HalBridge(hal, limits, catalogue=catalogue)
    broker = bridge.broker
    bridge.start()  # the HAL's buses into the broker; the HAL owns what it decodes and encodes
    try:
        actuators = [
            path for path, signal_config in vehicle.signals.items() if signal_config.kind == "actuator"
        ]
        _LOG.info(
            "serving profile %s (%s): %d signals, %d actuators, buses %s%s",
            vehicle.config.name,
            profile,
            len(vehicle.signals),
            len(actuators),
            ", ".join(vehicle.buses),
            f"; with the VSS catalogue {' + '.join(catalogue.files)}, {len(broker.list_metadata(access=UNRESTRICTED))} signals in all"
            if catalogue
            else "",
        )
        federated = vehicle.config.federation
        federation = None
        if federated is not None:
            from sdv.federation import Federation  # noqa: PLC0415 - zenoh is loaded only by a federated ECU

            home = profile.resolve().parent
            federation = Federation(
                broker,
                vehicle,
                federated,
                verifier=security.verifier,
                resolve=lambda path: path if path.is_absolute() else home / path,
            )
        with contextlib.ExitStack() as links:
            agent = _ota_agent(args, agent_config, broker, links)
            return asyncio.run(
                _run(
                    broker,
                    args.address,
                    args.port,
                    vehicle.config.services,
                    security,
                    federation,
                    viss,
                    agent,
                )
            )
    finally:
        bridge.stop()


class _FederatedServer:
    """The gRPC server and this ECU's federation, started and stopped together (the server first, last)."""

    def __init__(self, server: SdvServer, federation: Federation) -> None:
        self._server = server
        self._federation = federation

    @property
    def target(self) -> str:
        return self._server.target

    async def start(self) -> int:
        port = await self._server.start()
        try:
            await self._federation.start()
        except BaseException:
            await self._server.stop()
            raise
        return port

    async def stop(self) -> None:
        try:
            await self._federation.stop()
        finally:
            await self._server.stop()


def _viss_settings(args: argparse.Namespace) -> tuple[int, VissLimits] | None:
    """The VISS port and limits with ``--viss``, None without (``--viss-limits`` read and checked either way)."""
    limits = load_settings(args.viss_limits, VissLimits) if args.viss_limits else VissLimits()
    return (args.viss_port, limits) if args.viss else None


def _ota_agent_config(args: argparse.Namespace) -> AgentConfig | None:
    """The configuration of ``--ota-agent`` (None without)."""
    if args.ota_agent is None:
        return None
    from sdv.cli.ota_agent_commands import in_process_config  # noqa: PLC0415 - only an ECU with an agent

    return in_process_config(args.ota_agent)


def _ota_agent(
    args: argparse.Namespace, config: AgentConfig | None, broker: Broker, links: contextlib.ExitStack
) -> _Agent | None:
    """The update agent of ``--ota-agent`` on ``broker`` and the board the server will serve (None without)."""
    if config is None:
        return None
    from sdv.cli.ota_agent_commands import open_in_process_agent  # noqa: PLC0415 - only an ECU with an agent
    from sdv.ota.agent.consent import NoticeBoard  # noqa: PLC0415

    board = NoticeBoard()
    agent = open_in_process_agent(config, broker, board, links)
    _LOG.info("update agent %s in process (%s)", agent.record.state, args.ota_agent)
    return _Agent(agent, board, args.ota_port)


class _Agent:
    """The in-process update agent, the notice board it posts to, and the port of its service."""

    def __init__(self, agent: UpdateAgent, board: NoticeBoard, port: int) -> None:
        self.agent, self.board, self.port = agent, board, port


async def _run(
    broker: Broker,
    address: str,
    port: int,
    services: ServicesConfig,
    security: ServerSecurity,
    federation: Federation | None = None,
    viss: tuple[int, VissLimits] | None = None,
    agent: _Agent | None = None,
) -> int:
    board = None if agent is None else agent.board
    server = SdvServer(
        broker, address=address, port=port, services=services, security=security, notices=board
    )
    beside: list[tuple[str, Startable]] = []
    if viss is not None:
        from sdv.viss.server import VissServer  # noqa: PLC0415 - only a server serving VISS loads aiohttp

        viss_port, viss_limits = viss
        beside.append(
            (
                "VISS",
                VissServer(broker, address=address, port=viss_port, security=security, limits=viss_limits),
            )
        )
    if agent is not None:
        from sdv.api.ota import OtaServer  # noqa: PLC0415 - only a server with an update agent

        beside.append(
            ("OTA agent", OtaServer(agent.agent, address=address, port=agent.port, security=security))
        )
    served = server if federation is None else _FederatedServer(server, federation)
    return await serve_until_signalled(served, "sdv serve", beside=beside)
