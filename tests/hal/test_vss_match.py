"""``sdv profile init --vss``: DBC signals onto VSS leaves by name (the rule of ``sdv.hal.vss_match``), the others
under an overlay branch, the result checked clean against the catalogue; with the real VSS 4.0 and opendbc."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sdv.cli.main import main
from sdv.hal.codec import SignalLayout
from sdv.hal.vss_match import OverlayLeaf, VssIndex, overlay_document, words
from sdv.resources import demo_dbc
from sdv.vss import load_catalogue
from tests.vss_files import vss_release


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("VehicleSpeed", ("vehicle", "speed")),
        ("DI_vehicleSpeed", ("di", "vehicle", "speed")),
        ("WheelSpeedFL", ("wheel", "speed", "fl")),
        ("ENGINE_RPM", ("engine", "rpm")),
        ("StateOfCharge", ("state", "of", "charge")),
        ("Row1", ("row", "1")),
    ],
)
def test_names_split_into_lowercase_words(name: str, expected: tuple[str, ...]) -> None:
    assert words(name) == expected


@pytest.fixture(scope="module")
def index() -> VssIndex:
    return VssIndex(load_catalogue([vss_release("4.0")]))


def layout(name: str, **fields: object) -> SignalLayout:
    settings: dict[str, object] = {"start": 0, "length": 16, "scale": 1, "minimum": 0, "maximum": 1000}
    settings.update(fields)
    return SignalLayout(name=name, **settings)  # type: ignore[arg-type]


# (message, signal, expected VSS path or None, expected rounding) — one row per clause of the rule
MATCHES = [
    ("Speed", layout("VehicleSpeed", scale=0.01, unit="km/h"), "Vehicle.Speed", False),
    ("VDM_PropStatus", layout("VDM_VehicleSpeed", scale=0.01, unit="Kph"), "Vehicle.Speed", False),
    (
        "Pedals",
        layout("AcceleratorPedalPosition", length=8, scale=0.4, maximum=100, unit="%"),
        "Vehicle.Chassis.Accelerator.PedalPosition",
        True,
    ),
    (
        "Steering",
        layout("WheelAngle", is_signed=True, scale=0.1, minimum=-780, maximum=780, unit="deg"),
        "Vehicle.Chassis.SteeringWheel.Angle",
        True,
    ),
    ("Pedals", layout("PedalPosition", length=8, unit="%"), None, False),  # accelerator or brake: ambiguous
    ("Wheels", layout("Speed", unit="km/h"), None, False),  # many leaves are named Speed
    ("Speed", layout("VehicleSpeed", unit="mph"), None, False),  # another unit
    ("Speed", layout("VehicleSpeed"), None, False),  # no unit, VSS has km/h
    ("Gear", layout("IsMoving", unit="km/h"), None, False),  # VSS boolean, DBC number
    ("Body", layout("IsMoving", length=1, minimum=0, maximum=1), "Vehicle.IsMoving", False),
]


@pytest.mark.parametrize(("message", "signal", "expected", "rounding"), MATCHES)
def test_the_name_rule(
    index: VssIndex, message: str, signal: SignalLayout, expected: str | None, rounding: bool
) -> None:
    found = index.match(message, signal)
    assert (found.node.path if found else None) == expected
    assert (found.rounding if found else False) is rounding


def test_the_overlay_document_loads_as_a_vss_overlay(tmp_path: Path) -> None:
    leaves = [
        OverlayLeaf("Vehicle.Own.ESP.YawRate", "float", "degrees/s", "Yaw rate."),
        OverlayLeaf("Vehicle.Own.ESP.Mode", "string", None, "", ("Off", "On")),
    ]
    overlay = tmp_path / "overlay.json"
    overlay.write_text(json.dumps(overlay_document(leaves, {"Vehicle.Own": "Our signals."})))
    catalogue = load_catalogue([vss_release("4.0"), overlay])
    assert catalogue.nodes["Vehicle.Own"].description == "Our signals."
    assert catalogue.nodes["Vehicle.Own.ESP.Mode"].allowed == ("Off", "On")
    assert catalogue.nodes["Vehicle.Own.ESP.YawRate"].unit == "degrees/s"
    assert (
        catalogue.nodes["Vehicle"].description
        == load_catalogue([vss_release("4.0")]).nodes["Vehicle"].description
    )


def _check(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sdv.cli.main", "profile", "check", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_init_with_vss_on_a_real_opendbc_file_checks_clean(tmp_path: Path) -> None:
    import opendbc

    dbc = Path(opendbc.__file__).parent / "dbc" / "cadillac_ct6_powertrain.dbc"
    output = tmp_path / "ct6.yaml"
    vss = str(vss_release("4.0"))
    assert main(["profile", "init", "--dbc", str(dbc), "--vss", vss, "-o", str(output)]) == 0
    overlay = tmp_path / "ct6_overlay.json"
    signals = {entry["path"]: entry for entry in yaml.safe_load(output.read_text())["signals"]}
    angle = signals["Vehicle.Chassis.SteeringWheel.Angle"]
    assert (angle["datatype"], angle["unit"], angle["rounding"]) == ("int16", "degrees", "round")
    assert angle["source"]["signal"] == "SteeringWheelAngle"
    # two messages carry LKASVehicleSpeed: the first in message order feeds Vehicle.Speed, the other the overlay
    assert signals["Vehicle.Speed"]["source"] == {
        "bus": "can0",
        "message": "ASCMBLKASteeringCmd",
        "signal": "LKASVehicleSpeed",
    }
    assert "Vehicle.SDV.ASCMLKASteeringCmd.LKASVehicleSpeed" in signals
    others = [
        path for path in signals if path not in ("Vehicle.Speed", "Vehicle.Chassis.SteeringWheel.Angle")
    ]
    assert others and all(path.startswith("Vehicle.SDV.") for path in others)
    result = _check("--vss", vss, "--vss", str(overlay), str(output))
    assert result.returncode == 0, result.stderr
    assert f"ok: {len(signals)} signals" in result.stdout


def test_a_match_the_check_refuses_goes_to_the_overlay(tmp_path: Path) -> None:
    # The name says accelerator pedal position, but the DBC range goes below 0: uint8 cannot hold it
    dbc = tmp_path / "pedal.dbc"
    dbc.write_text(
        demo_dbc()
        .read_text()
        .replace(
            'AcceleratorPedalPosition : 0|8@1+ (0.4,0) [0|100] "%"',
            'AcceleratorPedalPosition : 0|8@1+ (0.4,-2) [-2|100] "%"',
        )
    )
    assert "(0.4,-2)" in dbc.read_text()
    output = tmp_path / "pedal.yaml"
    vss = str(vss_release("4.0"))
    assert (
        main(
            ["profile", "init", "--dbc", str(dbc), "--vss", vss, "--branch", "Vehicle.Own", "-o", str(output)]
        )
        == 0
    )
    paths = [entry["path"] for entry in yaml.safe_load(output.read_text())["signals"]]
    assert "Vehicle.Chassis.Accelerator.PedalPosition" not in paths
    assert "Vehicle.Own.Pedals.AcceleratorPedalPosition" in paths and "Vehicle.Speed" in paths
    result = _check("--vss", vss, "--vss", str(tmp_path / "pedal_overlay.json"), str(output))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ((), "sdv profile init: --vss needs -o FILE"),
        (("-o", "{out}", "--branch", "Vehicle.Cabin"), "--branch Vehicle.Cabin is in the VSS catalogue"),
        (("-o", "{out}", "--branch", "Own"), "--branch 'Own' is not a dotted VSS path"),
        (("-o", "{out}", "--overlay", "{missing}/o.json"), "missing is not a directory"),
    ],
    ids=["no-output", "branch-in-vss", "branch-not-a-path", "overlay-directory-missing"],
)
def test_bad_init_arguments_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], message: str
) -> None:
    out = str(tmp_path / "car.yaml")
    argv = ["profile", "init", "--dbc", str(demo_dbc()), "--vss", str(vss_release("4.0"))]
    missing = str(tmp_path / "missing")
    assert main([*argv, *(part.format(out=out, missing=missing) for part in extra)]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
