"""``sdv profile init`` with several DBC files keeps every signal of every file, on one bus or one bus each."""

from __future__ import annotations

from pathlib import Path

import cantools
import pytest
import yaml

from sdv.cli.exit_codes import EXIT_USAGE
from sdv.hal.vehicle import load_vehicle
from sdv.resources import demo_dbc
from tests.test_cli_exit_codes import assert_one_clear_line, run
from tests.vss_files import vss_release


def _opendbc(name: str) -> Path:
    import opendbc

    return Path(opendbc.__file__).parent / "dbc" / name


def _signal_count(dbc: Path) -> int:
    return sum(len(message.signals) for message in cantools.database.load_file(dbc, strict=False).messages)


def test_two_files_on_one_bus_keep_every_signal(tmp_path: Path) -> None:
    demo, ct6 = demo_dbc(), _opendbc("cadillac_ct6_powertrain.dbc")
    output = tmp_path / "car.yaml"
    result = run("profile", "init", "--dbc", str(demo), "--dbc", str(ct6), "-o", str(output))
    assert result.code == 0, result.err
    expected = _signal_count(demo) + _signal_count(ct6)
    assert f"wrote {output}: {expected} signals ({expected} on bus can0 from sdv_demo.dbc + " in result.err
    profile = yaml.safe_load(output.read_text())
    assert [bus["name"] for bus in profile["buses"]] == ["can0"]
    assert len(profile["buses"][0]["dbc"]) == 2
    vehicle = load_vehicle(output)  # the written profile checks clean
    assert len(vehicle.signals) == expected


def test_a_bus_per_file_and_paths_two_buses_share_take_the_bus_name(tmp_path: Path) -> None:
    demo = demo_dbc()
    output = tmp_path / "twin.yaml"
    result = run(
        "profile", "init", "--dbc", str(demo), "--dbc", str(demo), "--bus", "front", "--bus", "rear",
        "--channel", "vcan0", "--channel", "vcan1", "-o", str(output),
    )  # fmt: skip
    assert result.code == 0, result.err
    profile = yaml.safe_load(output.read_text())
    assert [(bus["name"], bus["channel"]) for bus in profile["buses"]] == [
        ("front", "vcan0"),
        ("rear", "vcan1"),
    ]
    count = _signal_count(demo)
    rear = [signal for signal in profile["signals"] if signal["source"]["bus"] == "rear"]
    assert len(rear) == count and all(signal["path"].startswith("rear.") for signal in rear)
    assert len(load_vehicle(output).signals) == 2 * count


def test_several_files_with_vss_keep_every_signal(tmp_path: Path) -> None:
    demo, ct6 = demo_dbc(), _opendbc("cadillac_ct6_powertrain.dbc")
    output = tmp_path / "car.yaml"
    vss = str(vss_release("4.0"))
    result = run(
        "profile", "init", "--dbc", str(demo), "--dbc", str(ct6), "--bus", "body", "--bus", "powertrain",
        "--vss", vss, "-o", str(output),
    )  # fmt: skip
    assert result.code == 0, result.err
    signals = yaml.safe_load(output.read_text())["signals"]
    assert len(signals) == _signal_count(demo) + _signal_count(ct6)
    assert {signal["source"]["bus"] for signal in signals} == {"body", "powertrain"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "message Steering (frame id 0x25) clashes with"),
        (["--bus", "a", "--bus", "b", "--bus", "c"], "2 --dbc files and 3 --bus names"),
        (["--bus", "a", "--bus", "a"], "--bus names repeat (a, a)"),
        (["--bus", "a", "--bus", "b", "--channel", "can0"], "2 buses and 1 --channel values"),
    ],
)
def test_files_that_cannot_share_the_buses_asked_for_are_refused(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    output = tmp_path / "car.yaml"
    result = run(
        "profile", "init", "--dbc", str(demo_dbc()), "--dbc", str(demo_dbc()), *extra, "-o", str(output)
    )
    assert_one_clear_line(result, EXIT_USAGE, message)
    assert not output.exists()


DIGIT_NAMES_DBC = """VERSION ""

NS_ :

BS_:

BU_: ECU GW

BO_ 264 DAT_BSI: 8 ECU
 SG_ 0_COUNTER : 35|4@0+ (1,0) [0|15] "" GW

BO_ 1275 2017_5: 8 ECU
 SG_ NEW_SIGNAL_1 : 7|8@0+ (1,0) [0|255] "" GW
"""


def test_names_that_start_with_a_digit_keep_their_spelling(tmp_path: Path) -> None:
    dbc = tmp_path / "psa.dbc"
    dbc.write_text(DIGIT_NAMES_DBC)
    output = tmp_path / "psa.yaml"
    result = run("profile", "init", "--dbc", str(dbc), "-o", str(output))
    assert result.code == 0, result.err
    profile = yaml.safe_load(output.read_text())
    sources = {(s["source"]["message"], s["source"]["signal"]): s["path"] for s in profile["signals"]}
    # The sources name what the file names; a path must start with a letter or "_" (VSS).
    assert sources == {
        ("DAT_BSI", "0_COUNTER"): "DAT_BSI.0_COUNTER",
        ("2017_5", "NEW_SIGNAL_1"): "_2017_5.NEW_SIGNAL_1",
    }
    vehicle = load_vehicle(output)
    assert vehicle.codec("can0", "2017_5").signal_names == ("NEW_SIGNAL_1",)
    assert vehicle.codec("can0", "DAT_BSI").decode(bytes([0, 0, 0, 0, 0x0A, 0, 0, 0])) == {"0_COUNTER": 0xA}
