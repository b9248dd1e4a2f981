"""The update agent's ``sdv ota`` commands.

On the ECU: ``agent`` (the gRPC update agent; its start stands for a boot; ``sdv serve --ota-agent CONFIG`` runs
the same agent inside ``sdv serve``, see :func:`open_in_process_agent`), ``install BUNDLE``, ``status``,
``activate``, ``mark-good``, ``rollback``, ``cancel``. Each works on the local state directory (``--config``) or,
with ``--target HOST:PORT``, talks to a running agent. For OTA servers: ``push BUNDLE --target HOST:PORT``,
which resumes an interrupted transfer from the agent's persisted offset, shows a progress bar and prints the
ECU's final status.

Exit codes: 0 on success; 1 when the agent refuses (wrong state, a second transfer, no space, a bundle that
fails verification; the reason on stderr); 2 for usage errors and an agent that cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.protobuf.json_format import MessageToDict
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from sdv._proto.sdv.ota.v1 import ota_pb2
from sdv.api.ota import OtaServer, status_to_proto
from sdv.api.security import ServerSecurity
from sdv.api.server import DEFAULT_ADDRESS
from sdv.cli.ota_fleet_options import (
    add_fleet_arguments,
    fleet_from_arguments,
    fleet_usage_error,
    identity_of,
)
from sdv.cli.ota_refusals import EXIT_REFUSED, Handler, agent_client, refusing
from sdv.cli.running import serve_until_signalled
from sdv.cli.security_options import (
    add_connection_arguments,
    add_server_security_arguments,
    server_security,
)
from sdv.client.address import OTA_AGENT_PORT
from sdv.client.errors import ServerUnreachableError
from sdv.errors import Problem, VerificationError
from sdv.ota.agent.config import AgentConfig, load_agent_config
from sdv.ota.agent.core import UpdateAgent, local_status
from sdv.ota.bundle.canonical import format_time
from sdv.ota.bundle.store import read_bundle_header
from sdv.ota.client import OtaClient, state_name
from sdv.ota.cockpit_link import CockpitLink
from sdv.ota.errors import (
    AgentConfigError,
    AgentStateError,
    InsufficientSpaceError,
    OperationCancelledError,
    TransferOffsetError,
)
from sdv.ota.fleet.service import FleetService
from sdv.ota.signals import BrokerSignals, RemoteSignals

if TYPE_CHECKING:
    from sdv.broker import Broker
    from sdv.ota.agent.consent import NoticeBoard

__all__ = ["in_process_config", "open_in_process_agent", "register"]

_LOG = logging.getLogger(__name__)
_REFUSALS = (
    VerificationError,
    AgentStateError,
    TransferOffsetError,
    InsufficientSpaceError,
    OperationCancelledError,
)
_DEFAULT_AGENT_PORT = OTA_AGENT_PORT
_WAITING_FOR_DRIVER = "waiting for the driver"  # the consent state of an install waiting for the answer


# -- status output -----------------------------------------------------------------------------------------------


def _bundle_text(bundle: ota_pb2.Bundle) -> str:
    return f"{bundle.name} {bundle.version} (release counter {bundle.release_counter})"


_INTEGERS = frozenset(
    {"sequence", "release_counter", "size", "offset", "staged_bytes", "staging_total", "checked_at"}
)


def _integers(document: dict[str, Any]) -> dict[str, Any]:
    """Protobuf's JSON mapping spells 64-bit integers as strings; a status document uses numbers."""
    return {
        key: _integers(value) if isinstance(value, dict) else int(value) if key in _INTEGERS else value
        for key, value in document.items()
    }


def _print_status(status: ota_pb2.Status, as_json: bool) -> None:
    if as_json:
        document = _integers(MessageToDict(status, preserving_proto_field_name=True))
        document["state"] = state_name(status.state)
        if "transfer" in document:
            document["transfer"]["state"] = document["state"]
        print(json.dumps(document, indent=2, sort_keys=True))
        return
    print(f"state:      {state_name(status.state)}")
    trial = f", trial slot {status.trial_slot}" if status.trial_slot else ""
    print(
        f"slots:      active {status.active_slot}, running {status.booted_slot}{trial} "
        f"({status.attempts_left} boot attempts left)"
    )
    installed = _bundle_text(status.installed) if status.HasField("installed") else "factory software"
    print(f"installed:  {installed}")
    if len(status.groups) > 1 or any(group.bad_slots or group.counter_floor for group in status.groups):
        for group in status.groups:
            print(f"group {group.name}: {_group_text(group)}")
    if status.HasField("bundle"):
        print(f"bundle:     {_bundle_text(status.bundle)}")
    if status.HasField("transfer"):
        print(f"transfer:   {status.transfer.offset} of {status.transfer.size} bytes")
    if status.staging_total:
        print(f"staged:     {status.staged_bytes} of {status.staging_total} bytes")
    if status.failure:
        print(f"reason:     {status.failure}")
    if status.HasField("vehicle"):
        _print_vehicle(status.vehicle)


def _print_vehicle(vehicle: ota_pb2.VehicleStatus) -> None:
    """The preconditions with their live values, the notice and the consent state."""
    if vehicle.software_id:
        print(f"software:   {vehicle.software_id}")
    if vehicle.checked:
        verdict = "met" if vehicle.met else "NOT met"
        print(f"vehicle:    preconditions for {vehicle.step} {verdict} at {_time_text(vehicle.checked_at)}")
        for line in vehicle.unmet:
            print(f"  unmet:    {line}")
        for reading in vehicle.signals:
            value = reading.value if reading.value else "(no value)"
            print(f"  signal:   {reading.path} = {value} ({reading.status})")
    if vehicle.notice_id:
        pending = " (pending on the cockpit)" if vehicle.consent == _WAITING_FOR_DRIVER else ""
        print(f"notice:     {vehicle.notice_id}{pending}")
    if vehicle.consent:
        print(f"consent:    {vehicle.consent}")


def _group_text(group: ota_pb2.GroupStatus) -> str:
    trial = f", trial {group.trial_slot}" if group.trial_slot else ""
    bad = f", bad {' '.join(group.bad_slots)}" if group.bad_slots else ""
    installed = _bundle_text(group.installed) if group.HasField("installed") else "factory software"
    floor = f", floor {group.counter_floor}" if group.counter_floor else ""
    return (
        f"active {group.active_slot}, running {group.booted_slot}{trial}{bad} "
        f"({group.attempts_left} boot attempts left); {installed}{floor}"
    )


def _time_text(seconds: int) -> str:
    """Unix seconds as the UTC time the agent's records show."""
    return format_time(datetime.fromtimestamp(seconds, UTC))


# -- local and remote actions ------------------------------------------------------------------------------------


def _open_agent(config: AgentConfig, links: contextlib.ExitStack, *, boot: bool = False) -> UpdateAgent:
    """The agent with the live signals and the cockpit of ``sdv serve`` when ``vehicle.signals.server`` names
    it (closed with ``links``)."""
    signals, cockpit = None, None
    if config.vehicle.signals.server is not None:
        signals = links.enter_context(RemoteSignals(config.vehicle.signals))
        cockpit = links.enter_context(CockpitLink(config.vehicle.signals))
    return links.enter_context(
        UpdateAgent(config, boot=boot, signals=signals, consent=cockpit, publisher=signals)
    )


def in_process_config(path: Path) -> AgentConfig:
    """The configuration of ``sdv serve --ota-agent PATH``, read before anything starts.

    Raises:
        AgentConfigError: the configuration cannot be read, or names a server to read the signals from (inside
            ``sdv serve`` the agent reads the broker of its own process).
    """
    config = load_agent_config(path)
    if config.vehicle.signals.server is not None:
        message = (
            "inside sdv serve (--ota-agent) the agent reads the signals of its own process; remove the server, "
            "or run the agent as sdv ota agent"
        )
        raise AgentConfigError([Problem(str(path), "vehicle.signals.server", message)])
    return config


def open_in_process_agent(
    config: AgentConfig, broker: Broker, board: NoticeBoard, links: contextlib.ExitStack
) -> UpdateAgent:
    """The update agent inside ``sdv serve``: its start stands for a boot, it reads the signals of ``broker`` and
    publishes the software identification into it (:class:`~sdv.ota.signals.BrokerSignals`, with the server's
    own rights), and posts its notices to ``board``, the board the cockpit service serves (closed with
    ``links``)."""
    source = BrokerSignals(broker)
    return links.enter_context(
        UpdateAgent(config, boot=True, signals=source, consent=board, publisher=source)
    )


def _local(args: argparse.Namespace, action: Callable[[UpdateAgent], object]) -> ota_pb2.Status:
    with contextlib.ExitStack() as links:
        agent = _open_agent(load_agent_config(args.config), links)
        action(agent)
        return status_to_proto(agent.status())


_FELL_BACK = frozenset({ota_pb2.STATE_ROLLED_BACK, ota_pb2.STATE_ROLLING_BACK})


def _act(
    name: str, local: Callable[[UpdateAgent], object], remote: Callable[[OtaClient], ota_pb2.Status]
) -> Handler:
    def run(args: argparse.Namespace) -> int:
        if args.target:
            with agent_client(args) as client:
                status = remote(client)
        else:
            status = _local(args, local)
        _print_status(status, args.json)
        if name == "activate" and status.state in _FELL_BACK:  # the trial failed: as push --activate says
            print(f"sdv ota activate: the trial failed: {status.failure}", file=sys.stderr)
            return EXIT_REFUSED
        return 0

    return run


def _status(args: argparse.Namespace) -> int:
    if args.target:
        with agent_client(args) as client:
            status = client.status()
    else:
        status = status_to_proto(local_status(load_agent_config(args.config)))
    _print_status(status, args.json)
    return 0


def _install(args: argparse.Namespace) -> int:
    def install(agent: UpdateAgent) -> None:
        agent.receive_file(args.bundle)
        agent.process()

    _print_status(_local(args, install), args.json)
    return 0


def _rollback_local(agent: UpdateAgent, reason: str) -> object:
    return agent.rollback(reason or "rollback requested")


def _waiting_text(vehicle: ota_pb2.VehicleStatus) -> str:
    """What an install waits for, in one line (empty when it waits for nothing)."""
    if vehicle.consent == _WAITING_FOR_DRIVER:
        return f"waiting for the driver's consent on the cockpit (notice {vehicle.notice_id})"
    if vehicle.checked and not vehicle.met:
        return f"waiting for the vehicle: {'; '.join(vehicle.unmet)}"
    return ""


# -- push ----------------------------------------------------------------------------------------------------------


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=False,
    )


def _transfer(client: OtaClient, args: argparse.Namespace, progress: Progress, task: TaskID) -> None:
    fresh = read_bundle_header(args.bundle).encoded_length  # a new transfer continues after the header

    def on_start(offset: int, size: int) -> None:
        progress.update(task, total=size, completed=offset)
        if offset > fresh:
            progress.console.print(f"resuming the transfer at byte {offset} of {size}")

    attempt = 0
    while True:
        try:
            client.push(
                args.bundle,
                chunk_bytes=args.chunk_size,
                on_start=on_start,
                on_progress=lambda offset: progress.update(task, completed=offset),
            )
            return
        except ServerUnreachableError as error:
            attempt += 1
            if attempt > args.retries:
                raise
            progress.console.print(f"{error}; retrying in {args.retry_delay} s ({attempt} of {args.retries})")
            time.sleep(args.retry_delay)


def _push(args: argparse.Namespace) -> int:
    if args.chunk_size < 1:
        print("sdv ota push: --chunk-size must be positive", file=sys.stderr)
        return 2
    read_bundle_header(args.bundle)  # a missing or malformed bundle fails before progress bars are drawn
    with agent_client(args) as client, _progress() as progress:
        _transfer(client, args, progress, progress.add_task("transfer", total=None))
        status = client.status()
        if status.state == ota_pb2.STATE_TRANSFERRED and not args.no_install:
            staging = progress.add_task("staging ", total=None)
            shown = [""]

            def on_status(update: ota_pb2.Status) -> None:
                progress.update(staging, total=update.staging_total or None, completed=update.staged_bytes)
                waiting = _waiting_text(update.vehicle)  # the agent waits for the vehicle or the driver
                if waiting != shown[0]:
                    shown[0] = waiting
                    if waiting:
                        progress.console.print(waiting)

            status = client.install(on_status)
            progress.update(staging, completed=progress.tasks[staging].total or 0)
        if args.activate and status.state == ota_pb2.STATE_READY:
            status = client.activate()
    _print_status(status, args.json)
    wanted = {
        ota_pb2.STATE_TRANSFERRED,
        ota_pb2.STATE_READY,
        ota_pb2.STATE_VERIFYING,
        ota_pb2.STATE_ACTIVATING,
    }
    if status.state not in wanted:
        print(
            f"sdv ota push: refused: the ECU is {state_name(status.state)}: {status.failure}", file=sys.stderr
        )
        return EXIT_REFUSED
    return 0


# -- the agent -----------------------------------------------------------------------------------------------------


def _agent(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        print(f"sdv ota agent: --port {args.port} is not a TCP port (0 to 65535)", file=sys.stderr)
        return 2
    if (usage := fleet_usage_error(args)) is not None:
        print(f"sdv ota agent: {usage}", file=sys.stderr)
        return 2
    security = server_security(args)  # SecurityConfigError: exit code 2 from the entry point
    config = load_agent_config(args.config)
    # Anyone reaching an open agent could activate, roll back or cancel updates: the same closed-by-default
    # rules as sdv serve, and every RPC needs the ota scope when tokens are checked.
    security.check_address(args.address, "send, install, activate and roll back updates")
    fleet = fleet_from_arguments(args, config.fleet)  # AgentConfigError: exit code 2
    with contextlib.ExitStack() as links:
        agent = _open_agent(config, links, boot=True)  # starting the agent stands for a boot
        status = agent.status()
        _LOG.info("booted slot %s; update agent %s", status.booted_slot, status.record.state)
        if fleet is None:
            return asyncio.run(_serve(agent, args.address, args.port, security))
        with FleetService(fleet, agent, identity_of(config)):  # pulls beside the gRPC service
            return asyncio.run(_serve(agent, args.address, args.port, security))


async def _serve(agent: UpdateAgent, address: str, port: int, security: ServerSecurity) -> int:
    server = OtaServer(agent, address=address, port=port, security=security)
    return await serve_until_signalled(server, "sdv ota agent")


# -- parsers -------------------------------------------------------------------------------------------------------


def _where(parser: argparse.ArgumentParser, *, remote: bool = True) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="the agent configuration (work on its state directory)")
    if remote:
        where.add_argument("--target", metavar="HOST[:PORT]", help="talk to a running update agent instead")
        add_connection_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the status as JSON")


def register(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the update agent's commands to the ``sdv ota`` group."""
    agent = group.add_parser(
        "agent", help="ECU side: run the update agent's gRPC service (its start is a boot)"
    )
    agent.add_argument("--config", type=Path, required=True, help="the agent configuration (YAML)")
    agent.add_argument(
        "--address", default=DEFAULT_ADDRESS, help=f"address to listen on (default {DEFAULT_ADDRESS})"
    )
    agent.add_argument(
        "--port",
        type=int,
        default=_DEFAULT_AGENT_PORT,
        help=f"port (default {_DEFAULT_AGENT_PORT}; 0 picks one)",
    )
    add_server_security_arguments(agent)
    add_fleet_arguments(agent)
    agent.set_defaults(handler=_agent, log_level=logging.INFO)  # a service says what it does

    install = group.add_parser(
        "install", help="ECU side: verify a local bundle and stage it in the inactive slot"
    )
    install.add_argument("bundle", type=Path)
    _where(install, remote=False)
    install.set_defaults(handler=refusing("install", _install, _REFUSALS))

    status = group.add_parser("status", help="ECU side: the update agent's state, slots and bundles")
    _where(status)
    status.set_defaults(handler=_status)

    for name, help_text, local, remote in (
        ("activate", "start the staged bundle on trial", UpdateAgent.activate, OtaClient.activate),
        ("mark-good", "commit the slot on trial", UpdateAgent.mark_good, OtaClient.mark_good),
        ("cancel", "abandon a transfer or a staged bundle", UpdateAgent.cancel, OtaClient.cancel),
    ):
        parser = group.add_parser(name, help=f"ECU side: {help_text}")
        _where(parser)
        parser.set_defaults(handler=refusing(name, _act(name, local, remote), _REFUSALS))

    rollback = group.add_parser("rollback", help="ECU side: go back to the committed slot from a trial")
    _where(rollback)
    rollback.add_argument("--reason", default="", help="recorded as the failure reason")
    rollback.set_defaults(
        handler=lambda args: refusing(
            "rollback",
            _act(
                "rollback",
                lambda agent: _rollback_local(agent, args.reason),
                lambda client: client.rollback(args.reason),
            ),
            _REFUSALS,
        )(args)
    )

    push = group.add_parser("push", help="OTA server side: transfer a bundle to an ECU's agent, resumably")
    push.add_argument("bundle", type=Path)
    push.add_argument("--target", metavar="HOST[:PORT]", required=True, help="the ECU's update agent")
    add_connection_arguments(push)
    push.add_argument("--chunk-size", type=int, default=1024 * 1024, help="bytes per chunk (default 1 MiB)")
    push.add_argument("--retries", type=int, default=3, help="reconnect this often when the link breaks")
    push.add_argument("--retry-delay", type=float, default=2.0, help="seconds between reconnects (default 2)")
    push.add_argument("--no-install", action="store_true", help="only transfer; do not verify and stage")
    push.add_argument("--activate", action="store_true", help="activate the bundle once it is staged")
    push.add_argument("--json", action="store_true", help="print the final status as JSON")
    push.set_defaults(handler=refusing("push", _push, _REFUSALS))
