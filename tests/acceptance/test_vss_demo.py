"""The example vehicle follows COVESA VSS 4.0: its profile passes the catalogue check with the shipped overlay, the
overlay adds only the project's own branch ``Vehicle.SDV``, and ``sdv serve --profile DEMO --vss 4.0 --vss
OVERLAY`` as a process serves the demo with the whole catalogue, the HAL keeping what it feeds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from sdv.client import VehicleClient
from sdv.errors import AlreadyProvidedError, ValueOutOfRangeError
from sdv.hal.vehicle import load_vehicle
from sdv.resources import demo_overlay, demo_profile
from sdv.vss import load_catalogue
from tests.acceptance.test_pure_broker import kuksa
from tests.serve_process import REPOSITORY, serving
from tests.vss_files import RELEASES, vss_release

OVERLAY_BRANCH = "Vehicle.SDV."
GEAR = "Vehicle.Powertrain.Transmission.SelectedGear"


def _leaves(tree: dict[str, Any], prefix: str = "") -> list[str]:
    found: list[str] = []
    for name, node in tree.items():
        path = f"{prefix}.{name}" if prefix else name
        found += _leaves(node.get("children", {}), path) if node["type"] == "branch" else [path]
    return found


def test_the_demo_profile_passes_the_vss_4_0_check_with_its_overlay() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sdv.cli.main",
            "profile",
            "check",
            "--vss",
            str(vss_release("4.0")),
            "--vss",
            str(demo_overlay()),
            str(demo_profile()),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPOSITORY,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "ok: 41 signals (13 actuators; provided from outside: 0 values, 0 actuators)" in done.stdout
    assert "matching the VSS catalogue" in done.stdout


def test_without_the_overlay_only_the_overlay_signals_are_missing_from_vss_4_0() -> None:
    catalogue = load_catalogue([vss_release("4.0")])
    vehicle = load_vehicle(demo_profile())
    own = sorted(path for path in vehicle.signals if path.startswith(OVERLAY_BRANCH))
    assert len(own) == 9
    assert sorted(path for path in vehicle.signals if path not in catalogue) == own
    overlay = _leaves(json.loads(demo_overlay().read_text()))
    assert sorted(overlay) == own  # the overlay describes exactly the demo's own signals


@pytest.mark.parametrize("release", RELEASES)
def test_the_overlay_adds_its_branch_and_changes_no_vss_node(release: str) -> None:
    base = load_catalogue([vss_release(release)])
    combined = load_catalogue([vss_release(release), demo_overlay()])
    added = set(combined.nodes) - set(base.nodes)
    assert added and all(path == "Vehicle.SDV" or path.startswith(OVERLAY_BRANCH) for path in added)
    changed = [
        path for path, node in base.nodes.items() if combined.nodes[path].description != node.description
    ]
    assert changed == []


def test_demo_signals_follow_the_vss_kinds_and_datatypes() -> None:
    vehicle = load_vehicle(demo_profile())
    signals = vehicle.signals
    assert (signals[GEAR].kind, signals[GEAR].datatype, signals[GEAR].actuated_by) == (
        "actuator",
        "int8",
        None,
    )
    assert signals["Vehicle.Chassis.SteeringWheel.Angle"].datatype == "int16"
    pedal = signals["Vehicle.Chassis.Accelerator.PedalPosition"]
    assert (pedal.datatype, pedal.min, pedal.max, pedal.rounding) == ("uint8", 0, 100, "round")
    target = signals["Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"]
    assert (target.datatype, target.rounding, target.actuated_by) == ("int8", "round", "hal")


async def test_serve_with_vss_4_0_and_the_overlay_serves_the_demo_and_the_catalogue() -> None:
    arguments = [
        "--profile",
        str(demo_profile()),
        "--vss",
        str(vss_release("4.0")),
        "--vss",
        str(demo_overlay()),
    ]
    with serving(*arguments) as (port, _):
        async with VehicleClient(f"127.0.0.1:{port}") as client:
            lane = await client.metadata("Vehicle.SDV.ADAS.Lane.Curvature")
            assert (lane.kind, lane.datatype, lane.unit) == ("sensor", "float", "1/m")
            gear = await client.metadata(GEAR)
            assert (gear.kind, gear.datatype) == ("actuator", "int8")
            angle = await client.metadata("Vehicle.Chassis.SteeringWheel.Angle")
            assert (angle.datatype, angle.unit) == ("int16", "degrees")
            # a VSS signal the demo lacks is served too, open to any provider
            lacking = "Vehicle.Cabin.Door.Row2.PassengerSide.IsChildLockActive"
            await client.publish(lacking, True)
            assert (await client.get([lacking]))[lacking].value is True
            # the HAL feeds the selected gear and has no request message for it: read-only, and nobody else's
            # (INVALID_ARGUMENT over gRPC, as for a sensor; the client raises ValueOutOfRangeError for it)
            with pytest.raises(ValueOutOfRangeError, match=r"SelectedGear is provided read-only by the HAL"):
                await client.actuate(GEAR, 127)
            with pytest.raises(AlreadyProvidedError, match=r"SelectedGear is already provided by the HAL"):
                await client.publish(GEAR, 127)
            with pytest.raises(ValueOutOfRangeError, match=r"expected an integer \(int8\), got 21\.5"):
                await client.actuate("Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature", 21.5)
        # the unchanged kuksa-client gets the same clear refusal for the gear, and can set the cabin temperature
        refused = kuksa("target", port, GEAR, "127")
        assert "SelectedGear is provided read-only by the HAL" in str(refused["message"]), refused
        assert kuksa("target", port, "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature", "21") == {
            "result": "ok"
        }
