"""``sdv ota agent``'s options for pulling updates (``--hawkbit``, ``--index``) and the fleet section they make.

A token is never an argument (the process list shows arguments): ``--token-file``, or the environment variable
the configuration names (default ``SDV_OTA_HAWKBIT_TOKEN``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from sdv.located import validation_problems
from sdv.ota.agent.config import AgentConfig
from sdv.ota.errors import AgentConfigError
from sdv.ota.fleet.config import FleetConfig
from sdv.ota.fleet.updater import Identity

__all__ = ["add_fleet_arguments", "fleet_from_arguments", "fleet_usage_error", "identity_of"]


def add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the pulling options to ``sdv ota agent``."""
    group = parser.add_argument_group("pulling updates (instead of the configuration's fleet section)")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--hawkbit", metavar="URL", help="poll this Eclipse hawkBit server (DDI API)")
    source.add_argument("--index", metavar="URL", help="poll this signed bundle index (sdv ota index)")
    group.add_argument("--tenant", help="the hawkBit tenant")
    group.add_argument("--controller-id", help="this ECU's hawkBit controller id")
    group.add_argument("--token-file", type=Path, help="file holding the hawkBit target or gateway token")
    group.add_argument(
        "--gateway-token", action="store_true", help="the token is a gateway token (default: a target token)"
    )
    group.add_argument("--fleet-ca", type=Path, help="certificate authorities of the update server (PEM)")


def fleet_usage_error(args: argparse.Namespace) -> str | None:
    """What is wrong with the combination of pulling options, if anything (a usage error, exit code 2)."""
    if args.hawkbit is None and (args.tenant or args.controller_id or args.token_file or args.gateway_token):
        return "--tenant, --controller-id, --token-file and --gateway-token go with --hawkbit"
    if args.hawkbit is not None and not (args.tenant and args.controller_id):
        return "--hawkbit needs --tenant and --controller-id"
    return None


def fleet_from_arguments(args: argparse.Namespace, configured: FleetConfig | None) -> FleetConfig | None:
    """The fleet section the options give, or the configured one when they give none.

    Raises:
        AgentConfigError: options that do not make a valid fleet section (a URL that is none).
    """
    if args.hawkbit is None and args.index is None:
        return configured
    base = configured or FleetConfig.model_construct()
    section: dict[str, object] = {"download": base.download, "tls": base.tls}
    if args.fleet_ca is not None:
        section["tls"] = base.tls.model_copy(update={"ca_file": args.fleet_ca})
    if args.hawkbit is not None:
        hawkbit: dict[str, object] = {
            "url": args.hawkbit,
            "tenant": args.tenant,
            "controller_id": args.controller_id,
            "token_kind": "gateway" if args.gateway_token else "target",
        }
        if args.token_file is not None:
            hawkbit["token_file"] = args.token_file
        section["hawkbit"] = {key: value for key, value in hawkbit.items() if value is not None}
    else:
        section["index"] = {"url": args.index}
    try:
        return FleetConfig.model_validate(section)
    except ValidationError as error:
        problems = validation_problems(error, "command line", {})
        raise AgentConfigError(problems) from None


def identity_of(config: AgentConfig) -> Identity:
    """The ECU as the fleet clients need to know it."""
    return Identity(
        hardware_id=config.hardware_id,
        ecu_id=config.ecu_id or config.hardware_id,
        trust=config.trust,
        state_dir=config.state_dir,
        limits=config.limits,
        max_chunk_bytes=config.transfer.max_chunk_bytes,
    )
