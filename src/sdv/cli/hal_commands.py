"""``sdv dbc``, ``sdv decode``, ``sdv profile init|check`` and ``sdv demo``: the HAL on the command line.

``sdv decode`` lives in :mod:`sdv.cli.decode_commands`, ``sdv dbc`` in :mod:`sdv.cli.dbc_commands`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sdv.cli import dbc_commands, decode_commands, profile_init
from sdv.cli.decode_commands import show
from sdv.errors import CatalogueError, DbcError, ProfileError
from sdv.hal.processor import SignalUpdate
from sdv.hal.runtime import Hal
from sdv.hal.sources import RecordingSource
from sdv.hal.vehicle import load_vehicle
from sdv.resources import demo_profile, demo_recording
from sdv.vss import load_catalogue

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the HAL commands to the ``sdv`` parser."""
    dbc_commands.register(subparsers)
    decode_commands.register(subparsers)

    profile = subparsers.add_parser("profile", help="write or check a vehicle profile")
    actions = profile.add_subparsers(dest="action", metavar="ACTION", required=True)
    profile_init.register(actions, _vss_option)
    check = actions.add_parser(
        "check", help="validate a profile against its DBC files and print every problem"
    )
    _vss_option(check, "check every signal against this VSS catalogue (vss-tools JSON); repeat for overlays")
    check.add_argument("file", type=Path)
    check.set_defaults(handler=_profile_check)

    demo = subparsers.add_parser("demo", help="decode the bundled demo drive and show it")
    demo.add_argument(
        "--every", type=float, default=5.0, metavar="SECONDS", help="drive time between rows (default 5)"
    )
    demo.set_defaults(handler=_demo)


def _vss_option(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--vss", action="append", default=[], type=Path, metavar="FILE", help=text)


def _profile_check(args: argparse.Namespace) -> int:
    try:
        catalogue = load_catalogue(args.vss) if args.vss else None
    except CatalogueError as error:
        print(f"sdv profile check: the VSS catalogue does not load: {error}", file=sys.stderr)
        return 1
    try:
        vehicle = load_vehicle(args.file, catalogue=catalogue)
    except (ProfileError, DbcError) as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return 1
    for warning in vehicle.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    signals = vehicle.signals.values()
    actuators = sum(1 for signal in signals if signal.kind == "actuator")
    external = sum(1 for signal in signals if signal.provided_by == "external")
    external_actuation = sum(1 for signal in signals if signal.actuated_by == "external")
    checked = f", matching the VSS catalogue ({len(catalogue)} nodes)" if catalogue is not None else ""
    print(
        f"{args.file}: ok: {len(vehicle.signals)} signals ({actuators} actuators; provided from outside: "
        f"{external} values, {external_actuation} actuators) on {len(vehicle.buses)} bus(es), "
        f"{len(vehicle.warnings)} DBC warning(s){checked}"
    )
    return 0


# --- demo --------------------------------------------------------------------------------------------------------
_DEMO_COLUMNS = (
    ("t", None),
    ("speed", "Vehicle.Speed"),
    ("gear", "Vehicle.Powertrain.Transmission.SelectedGear"),
    ("steer", "Vehicle.Chassis.SteeringWheel.Angle"),
    ("accel", "Vehicle.Acceleration.Longitudinal"),
    ("brake", "Vehicle.SDV.Chassis.Brake.Pressure"),
    ("soc", "Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed"),
    ("left", "Vehicle.Body.Lights.DirectionIndicator.Left.IsSignaling"),
    ("right", "Vehicle.Body.Lights.DirectionIndicator.Right.IsSignaling"),
    ("lowbeam", "Vehicle.Body.Lights.Beam.Low.IsOn"),
    ("door", "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"),
    ("lead_m", "Vehicle.SDV.ADAS.LeadVehicle.Distance"),
)


def _demo(args: argparse.Namespace) -> int:
    vehicle = load_vehicle(demo_profile())
    bus = next(iter(vehicle.buses))
    source = RecordingSource(bus, demo_recording(), realtime=False, loop=False)
    hal = Hal(vehicle, sources={bus: source})
    print(
        f"sdv demo: {vehicle.config.name}, {len(vehicle.signals)} signals; replaying {demo_recording().name}\n"
    )
    print("  ".join(f"{name:>7}" for name, _ in _DEMO_COLUMNS))
    current: dict[str, object] = {}
    start: float | None = None
    next_row = 0.0
    updates: list[SignalUpdate]
    try:
        for updates in hal.replay():
            for update in updates:
                current[update.path] = update.value
            if not updates or updates[-1].timestamp == 0.0:
                continue
            stamp = updates[-1].timestamp
            start = stamp if start is None else start
            if stamp - start >= next_row:
                next_row += args.every
                cells = [f"{stamp - start:7.1f}"] + [
                    f"{show(current.get(path, '-')):>7}" for _, path in _DEMO_COLUMNS[1:]
                ]
                print("  ".join(cells))
    finally:
        hal.close()
    for name, stats in hal.statistics().items():
        bad = ", ".join(f"{reason}: {count}" for reason, count in sorted(stats.bad.items())) or "none"
        print(f"\nbus {name}: {stats.frames} frames, {stats.decoded} decoded; bad frames: {bad}")
    return 0
