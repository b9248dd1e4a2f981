"""``sdv federation acl PROFILE... --output FILE``: the zenoh access rules of a federated vehicle.

Reads the profile of every ECU of the vehicle (each with its ``federation:`` section), works out what each ECU
owns as ``sdv serve`` does, and writes the one ``access_control`` section every ECU enforces
(``federation.access_rules``): an ECU may put only the signals it owns and answer only for its own actuators
(docs/federation.md, "Authorization"). Refused (exit code 1, one line each) when a profile has no ``federation:``
section, when the profiles name different vehicles or the same ECU twice, or when two ECUs claim one signal.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sdv.federation.acl import access_rules
from sdv.federation.ownership_map import EcuOwnership
from sdv.files import atomic_writer
from sdv.hal.vehicle import load_vehicle

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sdv federation`` to the ``sdv`` parser."""
    federation = subparsers.add_parser("federation", help="a vehicle's ECUs federated over Eclipse Zenoh")
    actions = federation.add_subparsers(dest="action", metavar="ACTION", required=True)
    acl = actions.add_parser("acl", help="write the zenoh access rules from the ECUs' profiles")
    acl.add_argument("profiles", type=Path, nargs="+", metavar="PROFILE", help="every ECU's profile")
    acl.add_argument("--output", "-o", type=Path, required=True, metavar="FILE", help="the JSON file written")
    acl.set_defaults(handler=_acl)


def _acl(args: argparse.Namespace) -> int:
    vehicles: set[str] = set()
    ecus: dict[str, EcuOwnership] = {}
    owners: dict[str, str] = {}
    for profile in args.profiles:
        vehicle = load_vehicle(profile)  # ProfileError: reported by the entry point (exit code 2)
        config = vehicle.config.federation
        if config is None:
            print(f"sdv federation acl: {profile}: the profile has no federation: section", file=sys.stderr)
            return 1
        if config.ecu in ecus:
            print(
                f"sdv federation acl: {profile}: ECU {config.ecu} is named by two profiles", file=sys.stderr
            )
            return 1
        vehicles.add(config.vehicle)
        ownership = EcuOwnership.of(vehicle, config)
        for signal in ownership.owned:
            holder = owners.setdefault(signal.path, config.ecu)
            if holder != config.ecu:
                print(
                    f"sdv federation acl: {profile}: {signal.path} is owned by ECU {holder} and ECU {config.ecu}",
                    file=sys.stderr,
                )
                return 1
        ecus[config.ecu] = ownership
    if len(vehicles) != 1:
        print(
            f"sdv federation acl: the profiles name several vehicles: {', '.join(sorted(vehicles))}",
            file=sys.stderr,
        )
        return 1
    document = {"access_control": access_rules(vehicles.pop(), ecus)}
    with atomic_writer(args.output) as handle:
        handle.write(json.dumps(document, indent=2).encode() + b"\n")
    print(
        f"sdv federation acl: {args.output}: rules for ECUs {', '.join(sorted(ecus))} ({len(owners)} signals)"
    )
    return 0
