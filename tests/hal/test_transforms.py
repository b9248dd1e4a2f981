"""Profile transforms a real mapping needs: expressions, their inverse for actuators, KUKSA-style value mappings
and the rounding rule of integer datatypes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sdv.errors import ProfileError
from sdv.hal.actuation import ActuatorEncoder
from sdv.hal.processor import FrameProcessor
from sdv.hal.vehicle import VehicleDefinition, load_vehicle
from sdv.resources import demo_dbc

from .conftest import build_frame

STEERING = {"bus": "vehicle", "message": "Steering", "signal": "SteeringAngle"}
SPEED = {"bus": "vehicle", "message": "VehicleDynamics", "signal": "VehicleSpeed"}
GEAR = {"bus": "vehicle", "message": "Gear", "signal": "GearPosition"}
TEMPERATURE = {"bus": "vehicle", "message": "ClimateStatus", "signal": "TargetTemperature"}
TEMPERATURE_REQUEST = {"message": "ClimateRequest", "signal": "CabinTemperatureRequest"}


def write_profile(tmp_path: Path, *signals: dict[str, object]) -> Path:
    data = {
        "buses": [
            {"name": "vehicle", "interface": "virtual", "channel": "t", "fd": True, "dbc": [str(demo_dbc())]}
        ],
        "signals": list(signals),
    }
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def signal(path: str = "Vehicle.Test", **fields: object) -> dict[str, object]:
    return {"path": path, "kind": "sensor", "datatype": "float", "source": SPEED, **fields}


def decoded(vehicle: VehicleDefinition, message: str, values: dict[str, float]) -> dict[str, object]:
    processor = FrameProcessor(vehicle)
    updates = processor.process(0, [build_frame(vehicle, message, values, timestamp=1.0)])
    return {update.path: update.value for update in updates}


@pytest.mark.parametrize(
    ("rounding", "angle", "expected"),
    [
        ("round", -12.5, -12),  # halves to even
        ("round", -12.6, -13),
        ("floor", -12.3, -13),
        ("ceil", -12.3, -12),
        ("truncate", -12.7, -12),
        ("floor", 3.0, 3),  # a scaled 3.0 is not 2.9999999999999996 for floor
        ("ceil", 3.0, 3),
    ],
)
def test_rounding_rule_makes_fractional_values_integers(
    tmp_path: Path, rounding: str, angle: float, expected: int
) -> None:
    vehicle = load_vehicle(
        write_profile(tmp_path, signal("Vehicle.Angle", datatype="int16", source=STEERING, rounding=rounding))
    )
    assert decoded(vehicle, "Steering", {"SteeringAngle": angle}) == {"Vehicle.Angle": expected}


def test_expressions_transform_decoded_values(tmp_path: Path) -> None:
    vehicle = load_vehicle(
        write_profile(
            tmp_path,
            signal("Vehicle.Rounded", transform={"math": "floor(x*10)/10"}),
            signal("Vehicle.Whole", datatype="uint16", transform={"math": "floor(x)"}),
            signal("Vehicle.Fast", datatype="boolean", transform={"math": "max(0, min(1, x // 100))"}),
            signal(
                "Vehicle.Capped", datatype="uint8", transform={"math": "min(x, 120) * 0.5"}, rounding="ceil"
            ),
        )
    )
    assert decoded(vehicle, "VehicleDynamics", {"VehicleSpeed": 123.47}) == {
        "Vehicle.Rounded": 123.4,
        "Vehicle.Whole": 123,
        "Vehicle.Fast": True,
        "Vehicle.Capped": 60,
    }


def test_kuksa_style_mapping_is_a_value_table(tmp_path: Path) -> None:
    mapping = [
        {"from": "P", "to": 126},
        {"from": "R", "to": -1},
        {"from": "N", "to": 0},
        {"from": "D", "to": 127},
    ]
    vehicle = load_vehicle(
        write_profile(
            tmp_path, signal("Vehicle.Gear", datatype="int8", source=GEAR, transform={"mapping": mapping})
        )
    )
    layout = vehicle.codec("vehicle", "Gear").signal("GearPosition")
    raw_of = {label: raw for raw, label in layout.choices.items()}
    assert decoded(vehicle, "Gear", {"GearPosition": raw_of["R"]}) == {"Vehicle.Gear": -1}


def test_actuator_expression_and_its_inverse(tmp_path: Path) -> None:
    fahrenheit = signal(
        "Vehicle.Target",
        kind="actuator",
        datatype="float",
        min=60.8,
        max=86,
        source=TEMPERATURE,
        actuator=TEMPERATURE_REQUEST,
        transform={"math": "x * 9 / 5 + 32", "inverse": "(x - 32) * 5 / 9"},
    )
    vehicle = load_vehicle(write_profile(tmp_path, fahrenheit))
    actuator = ActuatorEncoder(vehicle, vehicle.signals["Vehicle.Target"])
    frame = actuator.encode(77.0, None, 0.0)
    assert vehicle.codec("vehicle", "ClimateRequest").decode(frame.data)["CabinTemperatureRequest"] == 25.0
    assert decoded(vehicle, "ClimateStatus", {"Page": 0, "TargetTemperature": 20.0}) == {
        "Vehicle.Target": 68.0
    }


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ProfileError) as caught:
        load_vehicle(path)
    return [str(problem) for problem in caught.value.problems]


REFUSALS = [
    # (signal, key path, message fragment)
    (
        signal(datatype="int16", source=STEERING),
        "signals[0].datatype",
        "int16 cannot hold the fractional values of SteeringAngle (factor 0.1, offset 0); give 'rounding' "
        "(round, floor, ceil or truncate) or a float datatype",
    ),
    (
        signal(datatype="uint16", transform={"math": "x / 2"}),
        "signals[0].datatype",
        "uint16 cannot hold the expression 'x / 2' gives fractional values of VehicleSpeed; give 'rounding'",
    ),
    (
        signal(datatype="uint8", transform={"math": "x * 2"}, rounding="round"),
        "signals[0].datatype",
        "uint8 cannot hold the DBC signal VehicleSpeed's range [0, 600]",
    ),
    (
        signal(rounding="floor"),
        "signals[0]",
        "'rounding' applies to integer datatypes only; this signal is float",
    ),
    (
        signal(datatype="int8", source=GEAR, rounding="round", transform={"value_table": {"P": 1}}),
        "signals[0]",
        "'rounding' does not apply to a value table",
    ),
    (
        signal(rounding="nearest"),
        "signals[0].rounding",
        "Input should be 'round', 'floor', 'ceil' or 'truncate'",
    ),
    (
        signal(transform={"math": "x ** 2"}),
        "signals[0].transform.math",
        "the operator ** is not allowed at column 1",
    ),
    (signal(transform={"math": "sqrt(x)"}), "signals[0].transform.math", "only the functions"),
    (
        signal(transform={"math": "100 / (x - 50)"}),
        "signals[0].transform.math",
        "division by zero is possible at column 8: the divisor ranges over [-50, 250] (DBC signal VehicleSpeed)",
    ),
    (signal(transform={"math": "x", "factor": 2}), "signals[0].transform", "not factor/offset and math"),
    (signal(transform={"inverse": "x"}), "signals[0].transform", "'inverse' goes with 'math'"),
    (
        signal(
            kind="actuator", source=TEMPERATURE, actuator=TEMPERATURE_REQUEST, transform={"math": "x * 2"}
        ),
        "signals[0]",
        "an actuator with a 'math' transform needs 'inverse' too",
    ),
    (
        signal(
            kind="actuator",
            min=0,
            max=100,
            source=TEMPERATURE,
            actuator=TEMPERATURE_REQUEST,
            transform={"math": "x * 2", "inverse": "x / 2"},
        ),
        "signals[0].transform.inverse",
        "requests in [0, 100] give DBC values in [0, 50], outside the range [16, 30] of CabinTemperatureRequest",
    ),
    (
        signal(
            source=GEAR,
            datatype="int8",
            transform={"mapping": [{"from": "P", "to": 1}, {"from": "P", "to": 2}]},
        ),
        "signals[0].transform.mapping",
        "'from' 'P' is mapped twice",
    ),
    (
        signal(source=GEAR, datatype="int8", transform={"mapping": [{"from": "Park", "to": 1}]}),
        "signals[0].transform.mapping",
        "'Park' is neither a number nor a choice label of GearPosition",
    ),
]


@pytest.mark.parametrize(("entry", "where", "fragment"), REFUSALS)
def test_bad_transform_is_refused_at_load_with_its_line(
    tmp_path: Path, entry: dict[str, object], where: str, fragment: str
) -> None:
    profile = write_profile(tmp_path, entry)
    texts = problems_of(profile)
    assert any(
        text.startswith(f"{profile}: line ") and f": {where}" in text and fragment in text for text in texts
    ), texts
