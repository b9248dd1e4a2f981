"""A small federated test vehicle: three ECUs, each with its own profile, DBC and recorded bus.

* ECU ``a`` decodes ``Vehicle.Speed`` from its bus;
* ECU ``b`` decodes ``Vehicle.Body.Trunk.Rear.IsOpen``;
* ECU ``c`` decodes the low beam state and the cabin temperature, and owns the low beam actuator: its requests
  go out on a second bus, a python-can ``socketcand`` bus connected to ``frame_listener.py``, which prints each
  frame.

Every profile lists every signal of the vehicle: its own with their CAN source, the others ``provided_by:
external``, mirrored when their owner announces them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

VEHICLE = "testcar"
SPEED = "Vehicle.Speed"
TRUNK = "Vehicle.Body.Trunk.Rear.IsOpen"
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
CABIN_TEMPERATURE = "Vehicle.Cabin.HVAC.AmbientAirTemperature"
LIGHT_REQUEST_ID = 0x310

DBC = """VERSION ""

NS_ :

BS_:

BU_: A B C

BO_ 256 Dynamics: 8 A
 SG_ Speed : 0|16@1+ (0.01,0) [0|300] "km/h" Vector__XXX

BO_ 512 Doors: 8 B
 SG_ TrunkOpen : 0|1@1+ (1,0) [0|1] "" Vector__XXX

BO_ 768 Lights: 8 C
 SG_ LowBeamOn : 0|1@1+ (1,0) [0|1] "" Vector__XXX
 SG_ CabinTemp : 8|8@1+ (0.5,-20) [-20|107.5] "degC" Vector__XXX

BO_ 784 LightRequest: 8 A
 SG_ LowBeamRequest : 0|1@1+ (1,0) [0|1] "" Vector__XXX
"""

_SIGNALS: dict[str, dict[str, Any]] = {
    SPEED: {"kind": "sensor", "datatype": "float", "unit": "km/h", "min": 0, "max": 300},
    TRUNK: {"kind": "sensor", "datatype": "boolean"},
    LOW_BEAM: {"kind": "actuator", "datatype": "boolean"},
    CABIN_TEMPERATURE: {"kind": "sensor", "datatype": "float", "unit": "celsius"},
}
_SOURCES = {
    "a": {SPEED: ("Dynamics", "Speed")},
    "b": {TRUNK: ("Doors", "TrunkOpen")},
    "c": {LOW_BEAM: ("Lights", "LowBeamOn"), CABIN_TEMPERATURE: ("Lights", "CabinTemp")},
}
_FRAMES = {  # one frame per step of 20 ms, 2 s a loop: values that change, so that puts keep flowing
    "a": lambda step: (0x100, (1000 + 100 * step).to_bytes(2, "little") + bytes(6)),
    "b": lambda step: (0x200, bytes([step % 2]) + bytes(7)),
    "c": lambda step: (0x300, bytes([0, 80 + step % 20]) + bytes(6)),
}


@dataclass
class EcuFiles:
    """The files of one ECU and how it joins the others."""

    name: str
    profile: Path
    settings: dict[str, Any] = field(default_factory=dict)


def _recording(path: Path, ecu: str) -> None:
    lines = []
    for step in range(100):
        arbitration_id, data = _FRAMES[ecu](step)
        lines.append(f"({1767225600 + step * 0.02:.6f}) can0 {arbitration_id:03X}#{data.hex().upper()}")
    path.write_text("\n".join(lines) + "\n")


def write_vehicle(
    directory: Path,
    endpoints: dict[str, str],
    *,
    frame_port: int,
    frame_host: str = "127.0.0.1",
    lease_ms: int = 1000,
    gateway: dict[str, Any] | None = None,
) -> dict[str, EcuFiles]:
    """Write the three ECUs' files; ``endpoints`` maps each ECU to the zenoh endpoint it listens on."""
    dbc = directory / "testcar.dbc"
    dbc.write_text(DBC)
    ecus: dict[str, EcuFiles] = {}
    for ecu in ("a", "b", "c"):
        recording = directory / f"{ecu}.log"
        _recording(recording, ecu)
        buses: list[dict[str, Any]] = [
            {"name": "body", "recording": {"file": str(recording), "loop": True}, "dbc": [str(dbc)]}
        ]
        signals = []
        for path, meta in _SIGNALS.items():
            source = _SOURCES[ecu].get(path)
            entry = {"path": path, **meta}
            if source is None:
                entry["provided_by"] = "external"
            else:
                entry["source"] = {"bus": "body", "message": source[0], "signal": source[1]}
                if path == LOW_BEAM:
                    entry["actuator"] = {
                        "bus": "requests",
                        "message": "LightRequest",
                        "signal": "LowBeamRequest",
                    }
            signals.append(entry)
        if ecu == "c":
            buses.append(
                {
                    "name": "requests",
                    "interface": "socketcand",
                    "channel": "can0",
                    "options": {"host": frame_host, "port": frame_port},
                    "dbc": [str(dbc)],
                }
            )
        federation: dict[str, Any] = {
            "vehicle": VEHICLE,
            "ecu": ecu,
            "listen": [endpoints[ecu]],
            "peers": [endpoint for other, endpoint in endpoints.items() if other != ecu],
            "lease_ms": lease_ms,
            "actuation_timeout_s": 2.0,
        }
        if gateway is not None and ecu == "a":
            federation["gateway"] = gateway
        profile = directory / f"{ecu}.yaml"
        document = {"name": f"testcar-{ecu}", "buses": buses, "signals": signals, "federation": federation}
        profile.write_text(yaml.safe_dump(document, sort_keys=False))
        ecus[ecu] = EcuFiles(ecu, profile, federation)
    return ecus
