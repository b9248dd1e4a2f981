"""A profile checked against a VSS catalogue, and signals provided by outside providers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sdv.broker.hal_bridge import hal_owned_paths
from sdv.errors import NoProviderError, ProfileError, ReadOnlyError
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import load_vehicle
from sdv.resources import demo_dbc
from sdv.vss import load_catalogue
from tests.vss_files import vss_release

SPEED = {"bus": "vehicle", "message": "VehicleDynamics", "signal": "VehicleSpeed"}
CHARGE = {"bus": "vehicle", "message": "BatteryStatus", "signal": "StateOfCharge"}


def write_profile(tmp_path: Path, *signals: dict[str, object]) -> Path:
    data = {
        "buses": [
            {"name": "vehicle", "interface": "virtual", "channel": "t", "fd": True, "dbc": [str(demo_dbc())]}
        ],
        "signals": [
            {"path": "Vehicle.Speed", "kind": "sensor", "datatype": "float", "unit": "km/h", "source": SPEED},
            *signals,
        ],
    }
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def sensor(path: str, **fields: object) -> dict[str, object]:
    return {"path": path, "kind": "sensor", "datatype": "float", "source": SPEED, **fields}


GEAR = {"bus": "vehicle", "message": "Gear", "signal": "GearPosition"}

DIFFERENCES = [
    # (profile signal, key path, message fragment)
    (sensor("Vehicle.Speeed", unit="km/h"), "path", "Vehicle.Speeed is not in the VSS catalogue"),
    (sensor("Vehicle.Speeed", unit="km/h"), "path", "did you mean Vehicle.Speed"),
    (sensor("Vehicle.Sdv.Unknown"), "path", "(a signal VSS does not have belongs in an overlay)"),
    (
        sensor("Vehicle.Cabin.Door"),
        "path",
        "Vehicle.Cabin.Door is a branch in the VSS catalogue, not a signal",
    ),
    (
        sensor(
            "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen",
            datatype="boolean",
            source=GEAR,
            transform={"value_table": {"P": True}},
        ),
        "kind",
        "kind sensor differs from the VSS catalogue's actuator",
    ),
    (
        sensor("Vehicle.Chassis.SteeringWheel.Angle", unit="degrees"),
        "datatype",
        "datatype float differs from the VSS catalogue's int16",
    ),
    (
        sensor("Vehicle.Exterior.AirTemperature", unit="degC"),
        "unit",
        "unit degC differs from the VSS catalogue's celsius",
    ),
    (
        sensor("Vehicle.Exterior.AirTemperature"),
        "unit",
        "unit (none) differs from the VSS catalogue's celsius",
    ),
    (
        sensor(
            "Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed",
            unit="percent",
            min=-5,
            max=100,
            source=CHARGE,
        ),
        "min",
        "min -5 lies outside the VSS range [0, 100]",
    ),
    (
        sensor(
            "Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed",
            unit="percent",
            max=120,
            source=CHARGE,
        ),
        "max",
        "max 120 lies outside the VSS range [0, 100]",
    ),
    (
        sensor(
            "Vehicle.ADAS.ActiveAutonomyLevel",
            datatype="string",
            source=GEAR,
            allowed=["SAE_0", "SAE_9"],
            transform={"value_table": {"P": "SAE_0", "R": "SAE_9"}},
        ),
        "allowed",
        "allowed value 'SAE_9' is not one of the VSS allowed values",
    ),
    (
        sensor(
            "Vehicle.ADAS.ActiveAutonomyLevel",
            datatype="string",
            source=GEAR,
            transform={"value_table": {"P": "SAE_0", "R": "LEVEL_TWO"}},
        ),
        "transform.value_table",
        "value table value 'LEVEL_TWO' is not one of the VSS allowed values",
    ),
    (
        {
            "path": "Vehicle.ADAS.PowerOptimizeLevel",
            "kind": "actuator",
            "datatype": "uint8",
            "provided_by": "external",
            "allowed": [1, 12],
        },
        "allowed",
        "allowed value 12 lies outside the VSS range [0, 10]",
    ),
]


@pytest.mark.parametrize(
    ("entry", "key", "fragment"),
    DIFFERENCES,
    ids=[f"{row[1]}-{index}" for index, row in enumerate(DIFFERENCES)],
)
def test_difference_from_the_catalogue_is_located_and_names_the_vss_value(
    tmp_path: Path, entry: dict[str, object], key: str, fragment: str
) -> None:
    release = vss_release("4.0")
    profile = write_profile(tmp_path, entry)
    load_vehicle(profile)  # the profile alone is fine
    with pytest.raises(ProfileError) as caught:
        load_vehicle(profile, catalogue=load_catalogue([release]))
    texts = [str(problem) for problem in caught.value.problems]
    matching = [text for text in texts if f": signals[1].{key}" in text and fragment in text]
    assert matching, texts
    assert matching[0].startswith(f"{profile}: line ")
    if key != "path":
        assert matching[0].endswith(f"({release})")


def test_profile_matching_the_catalogue_loads_with_it(tmp_path: Path) -> None:
    catalogue = load_catalogue([vss_release("4.0")])
    profile = write_profile(
        tmp_path,
        sensor(
            "Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed",
            unit="percent",
            min=0,
            max=100,
            source=CHARGE,
        ),
        {
            "path": "Vehicle.ADAS.ActiveAutonomyLevel",
            "kind": "sensor",
            "datatype": "string",
            "provided_by": "external",
        },
    )
    vehicle = load_vehicle(profile, catalogue=catalogue)
    assert vehicle.catalogue is catalogue


def test_external_signals_are_not_owned_by_the_hal(tmp_path: Path) -> None:
    profile = write_profile(
        tmp_path,
        {
            "path": "Vehicle.Cabin.Sunroof.Position",
            "kind": "sensor",
            "datatype": "int8",
            "provided_by": "external",
        },
        {
            "path": "Vehicle.Cabin.Sunroof.Switch",
            "kind": "actuator",
            "datatype": "string",
            "provided_by": "external",
        },
        {
            "path": "Vehicle.Body.Lights.Beam.Low.IsOn",
            "kind": "actuator",
            "datatype": "boolean",
            "source": {"bus": "vehicle", "message": "BodyStatus", "signal": "LowBeamOn"},
        },
    )
    vehicle = load_vehicle(profile)
    signals = vehicle.signals
    assert [signals[path].provided_by for path in signals] == ["hal", "external", "external", "hal"]
    # The low beam has a source and no request message: the HAL only reads it, nobody actuates it
    assert [signals[path].actuated_by for path in signals] == [None, None, "external", None]
    assert hal_owned_paths(vehicle) == ["Vehicle.Speed", "Vehicle.Body.Lights.Beam.Low.IsOn"]
    hal = Hal(vehicle)
    with pytest.raises(NoProviderError, match="actuated by an outside provider"):
        hal.actuator("Vehicle.Cabin.Sunroof.Switch")
    with pytest.raises(ReadOnlyError, match="an actuator the HAL only reads"):
        hal.actuator("Vehicle.Body.Lights.Beam.Low.IsOn")


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"source": SPEED}, "a signal provided_by: external takes no 'source'"),
        ({"kind": "attribute", "value": 0}, "takes no 'value'"),
        (
            {"kind": "actuator", "actuator": {"message": "LightingRequest", "signal": "LowBeamRequest"}},
            "takes no 'actuator'",
        ),
        ({"provided_by": "someone"}, "Input should be 'hal' or 'external'"),
    ],
)
def test_external_signal_with_hal_parts_is_refused(
    tmp_path: Path, fields: dict[str, object], fragment: str
) -> None:
    entry = {
        "path": "Vehicle.Test",
        "kind": "sensor",
        "datatype": "float",
        "provided_by": "external",
        **fields,
    }
    with pytest.raises(ProfileError) as caught:
        load_vehicle(write_profile(tmp_path, entry))
    assert any(
        "signals[1]" in str(problem) and fragment in str(problem) for problem in caught.value.problems
    ), str(caught.value)


def test_missing_source_names_the_external_option(tmp_path: Path) -> None:
    with pytest.raises(
        ProfileError, match="or 'provided_by: external' for a signal an outside provider publishes"
    ):
        load_vehicle(write_profile(tmp_path, {"path": "Vehicle.Test", "kind": "sensor", "datatype": "float"}))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sdv.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_profile_check_with_vss_reports_differences_and_passes_a_matching_profile(tmp_path: Path) -> None:
    release = vss_release("4.0")
    overlay = tmp_path / "overlay.json"
    overlay.write_text('{"Vehicle": {"children": {"Speed": {"unit": "m/s"}}}}')
    good = write_profile(tmp_path)
    result = run("profile", "check", "--vss", str(release), str(good))
    assert result.returncode == 0, result.stderr
    assert "matching the VSS catalogue (1197 nodes)" in result.stdout
    result = run("profile", "check", "--vss", str(release), "--vss", str(overlay), str(good))
    assert result.returncode == 1
    assert (
        f"{good}: line 12: signals[0].unit: unit km/h differs from the VSS catalogue's m/s ({release} + {overlay})"
        in result.stderr
    )
    broken = tmp_path / "broken.json"
    broken.write_text('{"Vehicle": {"type": "brunch"}}')
    result = run("profile", "check", "--vss", str(broken), str(good))
    assert result.returncode == 1
    assert f"{broken}: Vehicle: 'type' must be one of branch" in result.stderr
    assert "Traceback" not in result.stderr
