"""``sdv decode``, ``sdv profile init|check`` and ``sdv demo``: the HAL on the command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sdv.cli import dbc_commands, profile_init
from sdv.errors import CatalogueError, DbcError, FrameError, ProfileError
from sdv.hal.codec import MessageCodec, SignalLayout, codec_from_cantools
from sdv.hal.dbc import load_dbc
from sdv.hal.processor import Converter, SignalUpdate, signal_converter
from sdv.hal.runtime import Hal
from sdv.hal.sources import RecordingSource, read_recording
from sdv.hal.vehicle import VehicleDefinition, load_vehicle
from sdv.resources import demo_profile, demo_recording
from sdv.vss import load_catalogue

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the HAL commands to the ``sdv`` parser."""
    dbc_commands.register(subparsers)
    decode = subparsers.add_parser("decode", help="decode a CAN recording with DBC files (and a profile)")
    decode.add_argument(
        "--dbc", action="append", default=[], type=Path, metavar="FILE", help="DBC file (repeatable)"
    )
    decode.add_argument(
        "--log",
        required=True,
        type=Path,
        metavar="RECORDING",
        help="candump .log, .asc, .blf, .csv, .trc (.gz); - reads candump text from standard input",
    )
    decode.add_argument("--profile", type=Path, metavar="FILE", help="name signals by their profile paths")
    decode.add_argument("--bus", help="with --profile: the bus the recording belongs to (default: the first)")
    decode.add_argument("--format", choices=("jsonl", "table"), default="jsonl")
    decode.set_defaults(handler=_decode)

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


# --- decode ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Decoded:
    timestamp: float
    channel: str | None
    frame_id: int
    message: str
    signals: Mapping[str, Any]


class _Decoder:
    """Decodes recorded frames one by one, counting what cannot be decoded."""

    def __init__(
        self,
        codecs: Mapping[tuple[int, bool], MessageCodec],
        vehicle: VehicleDefinition | None,
        bus: str | None,
    ):
        self.codecs = codecs
        self.failures: Counter[str] = Counter()
        self.frames = 0
        self._paths: dict[str, list[tuple[str, str, Converter]]] = {}
        if vehicle is not None and bus is not None:
            for signal in vehicle.signals.values():
                if signal.source is None or signal.source.bus != bus:
                    continue
                layout: SignalLayout = vehicle.codec(bus, signal.source.message).signal(signal.source.signal)
                self._paths.setdefault(signal.source.message, []).append(
                    (signal.source.signal, signal.path, signal_converter(signal, layout))
                )
        self.named_by_path = vehicle is not None

    def decode(self, recording: Path, errors: TextIO) -> Iterator[_Decoded]:
        for frame in read_recording(recording):
            self.frames += 1
            codec = self.codecs.get((frame.arbitration_id, frame.is_extended_id))
            where = f"{frame.timestamp:.6f} id 0x{frame.arbitration_id:X}"
            if codec is None:
                self._fail("unknown_id", f"{where}: no DBC message has this id", errors)
                continue
            try:
                values: Mapping[str, Any] = (
                    codec.decode(frame.data) if self.named_by_path else codec.decode_labelled(frame.data)
                )
            except FrameError as error:
                self._fail(error.reason, f"{where}: {error}", errors)
                continue
            if self.named_by_path:
                values = self._by_path(codec.name, values, where, errors)
            channel = None if frame.channel is None else str(frame.channel)
            yield _Decoded(frame.timestamp, channel, frame.arbitration_id, codec.name, values)

    def _by_path(self, message: str, values: Mapping[str, Any], where: str, errors: TextIO) -> dict[str, Any]:
        named = {}
        for signal, path, convert in self._paths.get(message, []):
            if signal not in values:
                continue
            try:
                named[path] = convert(values[signal])
            except KeyError:
                self._fail(
                    "unmapped_value",
                    f"{where}: {signal}={values[signal]} is not in {path}'s value table",
                    errors,
                )
        return named

    def _fail(self, reason: str, line: str, errors: TextIO) -> None:
        self.failures[reason] += 1
        print(f"not decoded: {line}", file=errors)

    def summary(self) -> str:
        failed = sum(self.failures.values())
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(self.failures.items()))
        return f"{self.frames} frames, {self.frames - failed} decoded, {failed} not decoded" + (
            f" ({reasons})" if reasons else ""
        )


def _load_codecs(dbc_files: Sequence[Path]) -> dict[tuple[int, bool], MessageCodec]:
    codecs: dict[tuple[int, bool], MessageCodec] = {}
    for path in dbc_files:
        for message in load_dbc(path).database.messages:
            codecs.setdefault(
                (message.frame_id, bool(message.is_extended_frame)), codec_from_cantools(message)
            )
    return codecs


def _decode(args: argparse.Namespace) -> int:
    vehicle = load_vehicle(args.profile) if args.profile else None
    bus = None
    if vehicle is not None:
        bus = args.bus or next(iter(vehicle.buses))
        if bus not in vehicle.buses:
            print(
                f"sdv decode: unknown bus {bus!r}; the profile has {', '.join(vehicle.buses)}",
                file=sys.stderr,
            )
            return 2
        codecs = dict(vehicle.buses[bus].codecs)
        codecs.update({key: codec for key, codec in _load_codecs(args.dbc).items() if key not in codecs})
    elif args.dbc:
        codecs = _load_codecs(args.dbc)
    else:
        print("sdv decode: give --dbc FILE (or --profile FILE)", file=sys.stderr)
        return 2
    decoder = _Decoder(codecs, vehicle, bus)
    out = sys.stdout
    for item in decoder.decode(args.log, sys.stderr):
        if args.format == "jsonl":
            record = {
                "timestamp": item.timestamp,
                "channel": item.channel,
                "frame_id": item.frame_id,
                "message": item.message,
                "signals": dict(item.signals),
            }
            out.write(json.dumps(record) + "\n")
        else:
            signals = "  ".join(f"{name}={_show(value)}" for name, value in item.signals.items())
            out.write(
                f"{item.timestamp:17.6f}  {item.channel or '-':6}  {item.frame_id:8X}  {item.message:24}  {signals}\n"
            )
    print(decoder.summary(), file=sys.stderr)
    return 0


def _show(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


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
                    f"{_show(current.get(path, '-')):>7}" for _, path in _DEMO_COLUMNS[1:]
                ]
                print("  ".join(cells))
    finally:
        hal.close()
    for name, stats in hal.statistics().items():
        bad = ", ".join(f"{reason}: {count}" for reason, count in sorted(stats.bad.items())) or "none"
        print(f"\nbus {name}: {stats.frames} frames, {stats.decoded} decoded; bad frames: {bad}")
    return 0
