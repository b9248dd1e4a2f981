"""Vehicle profile validation: every problem at once, each with file, line and key path."""

from __future__ import annotations

from pathlib import Path

import can
import pytest
import yaml

from sdv.errors import ProfileError
from sdv.hal.processor import FrameProcessor
from sdv.hal.vehicle import load_vehicle, vehicle_from_text
from sdv.resources import demo_dbc

BASE = {
    "buses": [
        {"name": "vehicle", "interface": "virtual", "channel": "t", "fd": True, "dbc": [str(demo_dbc())]}
    ],
    "signals": [
        {
            "path": "Vehicle.Speed",
            "kind": "sensor",
            "datatype": "float",
            "source": {"bus": "vehicle", "message": "VehicleDynamics", "signal": "VehicleSpeed"},
        }
    ],
}


def profile_with(tmp_path: Path, **changes: object) -> Path:
    data = {**BASE, **changes}
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def signal(**fields: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "path": "Vehicle.Test",
        "kind": "sensor",
        "datatype": "float",
        "source": {"bus": "vehicle", "message": "VehicleDynamics", "signal": "VehicleSpeed"},
    }
    entry.update(fields)
    return entry


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ProfileError) as caught:
        load_vehicle(path)
    return [str(problem) for problem in caught.value.problems]


def test_demo_profile_is_valid() -> None:
    from sdv.resources import demo_profile

    vehicle = load_vehicle(demo_profile())
    assert vehicle.signals["Vehicle.Speed"].unit == "km/h"
    assert vehicle.signals["Vehicle.Body.Lights.Beam.Low.IsOn"].kind == "actuator"
    assert vehicle.warnings == ()


@pytest.mark.parametrize(
    ("entry", "where", "expected"),
    [
        (
            signal(source={"bus": "chassis", "message": "X", "signal": "Y"}),
            "signals[1].source.bus",
            "unknown bus 'chassis'",
        ),
        (
            signal(source={"bus": "vehicle", "message": "VehicleDynamic", "signal": "VehicleSpeed"}),
            "signals[1].source.message",
            "did you mean VehicleDynamics",
        ),
        (
            signal(source={"bus": "vehicle", "message": "VehicleDynamics", "signal": "Speed"}),
            "signals[1].source.signal",
            "has no signal 'Speed'",
        ),
        (
            signal(datatype="uint8"),
            "signals[1].datatype",
            "uint8 cannot hold the DBC signal VehicleSpeed's range [0, 300]",
        ),
        (signal(datatype="int16"), "signals[1].datatype", "cannot hold the fractional values"),
        (signal(datatype="boolean"), "signals[1].datatype", "boolean cannot hold"),
        (signal(max=250), "signals[1].max", "max 250 cannot hold"),
        (signal(path="Vehicle.Speed"), "signals[1].path", "duplicate path Vehicle.Speed"),
        (signal(path="speed"), "signals[1].path", "expected a dotted VSS path"),
        (signal(datatype="float64"), "signals[1].datatype", "Input should be"),
        ({"path": "Vehicle.Test", "kind": "sensor", "datatype": "float"}, "signals[1]", "needs 'source'"),
        ({"path": "Vehicle.Test", "kind": "sensor"}, "signals[1].datatype", "required field is missing"),
        (
            signal(actuator={"message": "LightingRequest", "signal": "LowBeamRequest"}),
            "signals[1]",
            "only actuators take 'actuator'; this signal is a sensor",
        ),
        (signal(unit_of="km/h"), "signals[1].unit_of", "unknown field"),
        (
            signal(
                datatype="int8",
                source={"bus": "vehicle", "message": "Gear", "signal": "GearPosition"},
                transform={"value_table": {"Park": 126}},
            ),
            "signals[1].transform.value_table",
            "'Park' is neither a number nor a choice label of GearPosition (labels: D, N, P, R)",
        ),
        (
            signal(
                kind="actuator",
                datatype="float",
                min=10,
                max=30,
                source={"bus": "vehicle", "message": "ClimateStatus", "signal": "TargetTemperature"},
                actuator={"message": "ClimateRequest", "signal": "CabinTemperatureRequest"},
            ),
            "signals[1].min",
            "min 10 lies outside",
        ),
    ],
    ids=[
        "unknown-bus",
        "unknown-message",
        "unknown-signal",
        "datatype-too-small",
        "integer-for-fraction",
        "boolean-for-range",
        "range-too-narrow",
        "duplicate-path",
        "not-a-vss-path",
        "unknown-datatype",
        "no-source",
        "missing-datatype",
        "target-of-a-sensor",
        "misspelled-field",
        "unknown-choice-label",
        "actuator-range-beyond-dbc",
    ],
)
def test_bad_signal_is_reported_with_file_line_and_key_path(
    tmp_path: Path, entry: dict[str, object], where: str, expected: str
) -> None:
    path = profile_with(tmp_path, signals=[*BASE["signals"], entry])
    problems = problems_of(path)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{path}: line ")
    assert where in problems[0]
    assert expected in problems[0]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = profile_with(
        tmp_path,
        signals=[
            *BASE["signals"],
            signal(path="Vehicle.A", datatype="uint8"),
            signal(path="Vehicle.B", source={"bus": "vehicle", "message": "Nope", "signal": "X"}),
            signal(path="Vehicle.Speed"),
        ],
        messages=[
            {
                "bus": "vehicle",
                "message": "Steering",
                "e2e": {"counter": "Cnt", "checksum": "Checksum", "algorithm": "md5"},
            }
        ],
    )
    problems = problems_of(path)
    text = "\n".join(problems)
    assert "duplicate path Vehicle.Speed" in text  # shape problems come first and stop there
    path = profile_with(
        tmp_path,
        signals=[
            *BASE["signals"],
            signal(path="Vehicle.A", datatype="uint8"),
            signal(path="Vehicle.B", source={"bus": "vehicle", "message": "Nope", "signal": "X"}),
        ],
        messages=[
            {
                "bus": "vehicle",
                "message": "Steering",
                "e2e": {"counter": "Cnt", "checksum": "Checksum", "algorithm": "md5"},
            }
        ],
    )
    problems = problems_of(path)
    assert len(problems) == 4, problems
    joined = "\n".join(problems)
    for fragment in (
        "signals[1].datatype",
        "signals[2].source.message",
        "messages[0].e2e.counter",
        "messages[0].e2e.algorithm",
    ):
        assert fragment in joined


def test_missing_dbc_file_and_recording_are_named(tmp_path: Path) -> None:
    path = profile_with(
        tmp_path,
        buses=[{"name": "vehicle", "recording": {"file": "missing.log"}, "dbc": ["nowhere.dbc"]}],
        signals=[],
    )
    text = "\n".join(problems_of(path))
    assert "nowhere.dbc" in text and "missing.log" in text


def test_bus_needs_an_interface_or_a_recording(tmp_path: Path) -> None:
    path = profile_with(tmp_path, buses=[{"name": "vehicle", "dbc": [str(demo_dbc())]}], signals=[])
    assert any("exactly one of 'interface'" in problem for problem in problems_of(path))


def test_can_fd_message_on_a_classic_bus_is_refused(tmp_path: Path) -> None:
    bus = {**BASE["buses"][0], "fd": False}
    entry = signal(source={"bus": "vehicle", "message": "DriverAssist", "signal": "LeadVehicleDistance"})
    path = profile_with(tmp_path, buses=[bus], signals=[entry])
    assert any("CAN FD message" in problem for problem in problems_of(path))


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("buses:\n  - name: [unclosed\n")
    problems = problems_of(path)
    assert problems[0].startswith(f"{path}: line ")
    assert "not valid YAML" in problems[0]


def test_toml_profiles_load(tmp_path: Path) -> None:
    path = tmp_path / "profile.toml"
    path.write_text(
        f"""
name = "toml-vehicle"
[[buses]]
name = "vehicle"
interface = "virtual"
channel = "t"
fd = true
dbc = ["{demo_dbc()}"]
[[signals]]
path = "Vehicle.Speed"
kind = "sensor"
datatype = "float"
unit = "km/h"
source = {{ bus = "vehicle", message = "VehicleDynamics", signal = "VehicleSpeed" }}
"""
    )
    vehicle = load_vehicle(path)
    assert vehicle.config.name == "toml-vehicle"
    assert vehicle.signals["Vehicle.Speed"].unit == "km/h"


def test_value_outside_a_partial_value_table_is_counted_as_unmapped(tmp_path: Path) -> None:
    entry = signal(
        path="Vehicle.Gear",
        datatype="string",
        source={"bus": "vehicle", "message": "Gear", "signal": "GearPosition"},
        transform={"value_table": {"P": "park", "D": "drive"}},
    )
    path = profile_with(tmp_path, signals=[entry])
    processor = FrameProcessor(load_vehicle(path))
    park = processor.process(0, [can.Message(arbitration_id=0x1A0, is_extended_id=False, data=bytes([0, 0]))])
    assert [(update.path, update.value) for update in park] == [("Vehicle.Gear", "park")]
    assert (
        processor.process(0, [can.Message(arbitration_id=0x1A0, is_extended_id=False, data=bytes([2, 0]))])
        == []
    )
    assert processor.statistics()["vehicle"].bad["unmapped_value"] == 1


def test_relative_paths_resolve_against_the_profile(tmp_path: Path) -> None:
    (tmp_path / "dbc").mkdir()
    (tmp_path / "dbc" / "car.dbc").write_text(demo_dbc().read_text())
    text = yaml.safe_dump({**BASE, "buses": [{**BASE["buses"][0], "dbc": ["dbc/car.dbc"]}]})
    vehicle = vehicle_from_text(text, str(tmp_path / "p.yaml"))
    assert "VehicleDynamics" in vehicle.buses["vehicle"].by_name
