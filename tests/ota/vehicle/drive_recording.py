"""A small vehicle for the drive replay tests: its DBC, its profile and a recorded drive in candump format,
all written by the test into a directory.

The drive is made of phases, each holding one state of the vehicle for a number of seconds; the frames are
encoded with cantools from the DBC written here, so the recording and the profile cannot disagree.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cantools
import yaml
from tests.serve_process import serving

from sdv.api.tokens import create_token, generate_key, public_key_pem
from sdv.resources import software_overlay

__all__ = ["DBC", "Phase", "Replay", "replaying", "write_catalogue", "write_drive", "write_profile"]

CYCLE_S = 0.1
"""Every message is sent every 100 ms."""

DBC = """VERSION ""

NS_ :

BS_:

BU_: VCU BMS

BO_ 256 Drive: 8 VCU
 SG_ Speed : 0|16@1+ (0.01,0) [0|300] "km/h" Vector__XXX
 SG_ Gear : 16|4@1+ (1,0) [0|3] "" Vector__XXX
 SG_ ParkingBrake : 20|1@1+ (1,0) [0|1] "" Vector__XXX

BO_ 512 Battery: 8 BMS
 SG_ StateOfCharge : 0|8@1+ (0.5,0) [0|100] "%" Vector__XXX
 SG_ Charging : 8|1@1+ (1,0) [0|1] "" Vector__XXX

BA_DEF_ BO_ "GenMsgCycleTime" INT 0 65535;
BA_DEF_DEF_ "GenMsgCycleTime" 0;
BA_ "GenMsgCycleTime" BO_ 256 100;
BA_ "GenMsgCycleTime" BO_ 512 100;

VAL_ 256 Gear 0 "P" 1 "R" 2 "N" 3 "D" ;
"""
"""The vehicle's bus: speed, gear and parking brake from the VCU, state of charge and charging from the BMS, each
message every 100 ms (its cycle time lets the HAL judge freshness: a value that does not change is published once,
so its age says nothing, and a message that stops makes its signals stale)."""


@dataclass(frozen=True)
class Phase:
    """A part of the drive: the vehicle's state held for ``seconds``.

    Attributes:
        seconds: how long the phase lasts.
        speed: km/h.
        gear: ``P``, ``R``, ``N`` or ``D``.
        parking_brake: the parking brake is engaged.
        state_of_charge: percent.
        charging: the battery is charging.
    """

    seconds: float
    speed: float
    gear: str
    parking_brake: bool
    state_of_charge: float
    charging: bool = False


def write_profile(directory: Path) -> Path:
    """Write the DBC and the profile (its recording: ``drive.log``, played once in real time); returns the
    profile."""
    (directory / "drive.dbc").write_text(DBC)
    profile = {
        "name": "replay-vehicle",
        "description": "A small vehicle replaying a drive that ends parked, then moves off.",
        "buses": [
            {
                "name": "vehicle",
                "recording": {"file": "drive.log", "realtime": True, "loop": False},
                "dbc": ["drive.dbc"],
            }
        ],
        "freshness": {"timeout_multiple": 5},
        "signals": [
            _signal("Vehicle.Speed", "sensor", "float", "Drive", "Speed", unit="km/h"),
            {
                **_signal(
                    "Vehicle.Powertrain.Transmission.SelectedGear", "actuator", "int8", "Drive", "Gear"
                ),
                "transform": {"value_table": {"P": 126, "R": -1, "N": 0, "D": 127}},
            },
            _signal("Vehicle.Chassis.ParkingBrake.IsEngaged", "actuator", "boolean", "Drive", "ParkingBrake"),
            _signal(
                "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
                "sensor",
                "float",
                "Battery",
                "StateOfCharge",
                unit="percent",
            ),
            _signal(
                "Vehicle.Powertrain.TractionBattery.Charging.IsCharging",
                "sensor",
                "boolean",
                "Battery",
                "Charging",
            ),
        ],
    }
    path = directory / "replay_vehicle.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return path


def write_catalogue(profile: Path) -> Path:
    """Write a vss-tools JSON catalogue of the profile's signals (VSS 4.0 kinds, datatypes and units) next to it,
    the catalogue ``sdv serve --profile`` checks the profile against; returns its path."""
    root: dict[str, Any] = {"type": "branch", "description": "Vehicle.", "children": {}}
    for signal in yaml.safe_load(profile.read_text())["signals"]:
        branch = root
        for segment in signal["path"].split(".")[1:-1]:
            branch = branch["children"].setdefault(
                segment, {"type": "branch", "description": segment, "children": {}}
            )
        leaf = {"type": signal["kind"], "datatype": signal["datatype"], "description": signal["description"]}
        if "unit" in signal:
            leaf["unit"] = signal["unit"]
        branch["children"][signal["path"].rsplit(".", 1)[1]] = leaf
    path = profile.with_name("vehicle_vss.json")
    path.write_text(json.dumps({"Vehicle": root}))
    return path


def _signal(
    path: str, kind: str, datatype: str, message: str, signal: str, **extra: str
) -> dict[str, object]:
    return {
        "path": path,
        "kind": kind,
        "datatype": datatype,
        "description": f"{message}.{signal} of the replayed bus.",
        "source": {"bus": "vehicle", "message": message, "signal": signal},
        **extra,
    }


def write_drive(directory: Path, phases: list[Phase], *, start: float = 1_767_225_600.0) -> Path:
    """Write ``drive.log`` (candump ``-L`` lines) with every message each :data:`CYCLE_S` through the phases."""
    database = cantools.database.load_string(DBC, "dbc")
    drive, battery = database.get_message_by_name("Drive"), database.get_message_by_name("Battery")
    lines: list[str] = []
    moment = 0.0
    for phase in phases:
        for _ in range(round(phase.seconds / CYCLE_S)):
            frames = (
                (drive, {"Speed": phase.speed, "Gear": phase.gear, "ParkingBrake": int(phase.parking_brake)}),
                (battery, {"StateOfCharge": phase.state_of_charge, "Charging": int(phase.charging)}),
            )
            for offset, (message, values) in enumerate(frames):
                data = message.encode(values)
                lines.append(
                    f"({start + moment + offset * 0.001:.6f}) can0 {message.frame_id:03X}#{data.hex().upper()}"
                )
            moment += CYCLE_S
    path = directory / "drive.log"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Replay:
    """``sdv serve`` replaying a drive, the key its tokens are signed with, and its process."""

    port: int
    key: Any
    process: subprocess.Popen[str]

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def token(self, scope: str, subject: str) -> str:
        """A token of ``scope`` the server accepts."""
        return create_token(self.key, scope, subject=subject)


@contextlib.contextmanager
def replaying(directory: Path, phases: list[Phase], *arguments: str) -> Iterator[Replay]:
    """Run ``sdv serve --profile`` on the small vehicle replaying ``phases`` (from the moment it starts), its
    profile's catalogue and the software identification overlay, tokens checked; ``arguments`` are added."""
    drive = directory / "vehicle"
    drive.mkdir()
    profile = write_profile(drive)
    write_drive(drive, phases)
    key = generate_key()
    public = directory / "jwt.pub.pem"
    public.write_bytes(public_key_pem(key))
    with serving(
        "--profile", str(profile), "--vss", str(write_catalogue(profile)), "--vss", str(software_overlay()),
        "--jwt-public-key", str(public), *arguments,
    ) as (port, process):  # fmt: skip
        yield Replay(port, key, process)
