"""Vehicle-aware updates against a replayed drive: ``sdv serve --profile`` replays a recording of a small vehicle
(written here from its DBC with cantools: driving, then parked with enough charge, then moving off) and the update
agent runs as a process of its own (``sdv ota agent``), reading the decoded signals over the KUKSA API with its own
token. The test waits on the agent's states, never on the recording's clock: each phase of the drive lasts far
longer than the step it has to cover."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Ecu
from sdv._proto.sdv.ota.v1 import ota_pb2
from sdv.ota.client import OtaClient
from vehicle.background import events, install_waiting, state_reached
from vehicle.conftest import BRAKE, CHARGING, GEAR, SOC, SPEED, BuildVehicleBundle
from vehicle.drive_recording import Phase, Replay, replaying

pytestmark = pytest.mark.slow

DRIVING_S = 15.0
"""Long enough for the agent to start, take the bundle and find the vehicle moving."""
PARKED_S = 25.0
"""Long enough to install and activate a small bundle on a loaded machine."""
MOVING_OFF_S = 90.0
"""Longer than any wait of the test: the recording never ends under it."""

AGENT_SCOPE = "read:Vehicle.Speed read:Vehicle.Powertrain read:Vehicle.Chassis provide:Vehicle.Software"
TERMS: dict[str, Any] = {
    "preconditions": [f"{SPEED} == 0", f"{GEAR} == PARK", BRAKE, f"not {CHARGING}", f"{SOC} >= 30"],
    "energy": {"duration_s": 600, "energy_wh": 1500},
}


@pytest.fixture
def replay(tmp_path: Path) -> Iterator[Replay]:
    phases = [
        Phase(DRIVING_S, speed=48.0, gear="D", parking_brake=False, state_of_charge=81.0),
        Phase(PARKED_S, speed=0.0, gear="P", parking_brake=True, state_of_charge=80.0),
        Phase(MOVING_OFF_S, speed=6.5, gear="D", parking_brake=False, state_of_charge=80.0),
    ]
    with replaying(tmp_path, phases) as started:
        yield started


def _agent_config(ecu: Ecu, replay: Replay, tmp_path: Path) -> Path:
    token = tmp_path / "agent.jwt"
    token.write_text(replay.token(AGENT_SCOPE, "ota-agent"))
    # no max_age_s: the HAL publishes a value when it changes, and judges the freshness of its messages itself
    signals = {"server": replay.target, "token_file": str(token)}
    return ecu.write_config(
        vehicle={
            "signals": signals,
            "wait_s": 300,
            "recheck_interval_s": 0.1,
            "energy": {"capacity_wh": 60000, "reserve_percent": 15},
        }
    )


def test_the_update_waits_out_the_drive_starts_parked_and_aborts_when_the_vehicle_moves_off(
    ecu: Ecu, replay: Replay, build_vehicle_bundle: BuildVehicleBundle, start_agent: Any, tmp_path: Path
) -> None:
    factory = ecu.running()
    agent = start_agent(_agent_config(ecu, replay, tmp_path))
    with OtaClient(agent.target) as client:
        install, waiting = install_waiting(client, build_vehicle_bundle(TERMS))
        assert waiting.state == ota_pb2.STATE_TRANSFERRED  # offered while driving: nothing staged yet
        assert any(
            line.startswith(f"{SPEED} == 0: false for {SPEED} = 48.0") for line in waiting.vehicle.unmet
        )
        assert any(line.startswith(f"{GEAR} == PARK: false") for line in waiting.vehicle.unmet)

        assert install.join().state == ota_pb2.STATE_READY  # the recording reached the parked phase
        assert client.activate().state == ota_pb2.STATE_VERIFYING
        final = state_reached(
            client, ota_pb2.STATE_ROLLED_BACK, "the agent to roll back when the recording moves off"
        )
    assert "the vehicle left the update's preconditions" in final.failure
    assert f"{SPEED} = 6.5" in final.failure
    assert not final.HasField("installed")
    assert ecu.running() == factory  # the old software runs

    checks = events(ecu.state_dir, "preconditions")
    install_checks = [entry for entry in checks if entry["data"]["step"] == "install"]
    assert (
        install_checks[0]["data"]["met"] == 0
        and f"{SPEED}=48.0 valid" in install_checks[0]["data"]["signals"]
    )
    assert (
        install_checks[-1]["data"]["met"] == 1
        and f"{SPEED}=0.0 valid" in install_checks[-1]["data"]["signals"]
    )
    assert f"{SOC}=80.0 valid" in install_checks[-1]["data"]["signals"]
    assert install_checks[-1]["data"]["energy_available_wh"] == 39000  # (80 - 15) % of 60 kWh
    assert checks[-1]["data"]["step"] == "activation" and checks[-1]["data"]["met"] == 0
    assert f"{SPEED}=6.5 valid" in checks[-1]["data"]["signals"]
    states = [entry["state"] for entry in events(ecu.state_dir, "state")]
    assert states[-2:] == ["rolling-back", "rolled-back"]
