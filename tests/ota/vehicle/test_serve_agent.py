"""The update agent inside ``sdv serve`` (``--ota-agent CONFIG``), as a real process: it reads the replayed
vehicle's signals from the broker of its own process, posts its notice to the cockpit board the server serves, and
publishes the software identification into the same broker, which ``kuksa-client`` then reads."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.serve_process import REPOSITORY, SERVE

from conftest import Ecu
from sdv._proto.sdv.ota.v1 import ota_pb2
from sdv.client import ChannelSecurity
from sdv.client.notices import UpdateNoticesClient
from sdv.ota.client import OtaClient
from vehicle.background import Background, events, kuksa_software
from vehicle.conftest import TERMS, BuildVehicleBundle
from vehicle.drive_recording import Phase, Replay, replaying, write_profile

pytestmark = pytest.mark.slow

HEAD_UNIT_SCOPE = "read:Vehicle.Software actuate:Vehicle.Software.Notices"
_OTA_LINE = re.compile(r"^sdv serve: OTA agent listening on [^ ]+:(\d+)$")


def _agent_config(ecu: Ecu) -> Path:
    return ecu.write_config(
        vehicle={"wait_s": 60, "recheck_interval_s": 0.1, "energy": {"capacity_wh": 60000}},
    )


def _ota_target(replay: Replay) -> str:
    assert replay.process.stdout is not None
    line = replay.process.stdout.readline().strip()
    match = _OTA_LINE.match(line)
    assert match, f"unexpected line {line!r}"
    return f"127.0.0.1:{match[1]}"


def _kuksa_software(replay: Replay) -> dict[str, Any]:
    return kuksa_software(replay.port, replay.token("read:Vehicle.Software", "dashboard"))


async def _accept(replay: Replay) -> str:
    """The head unit: the first notice on the board of sdv serve, accepted by driver Carol."""
    security = ChannelSecurity(token=replay.token(HEAD_UNIT_SCOPE, "head-unit"))
    async with UpdateNoticesClient(replay.target, security=security) as notices:
        async for board in notices.stream(language="en"):
            if board:
                answered = await notices.decide(board[0].id, "accept", driver="Carol")
                return answered.answer.by
    raise AssertionError("the notice stream ended without a notice")


def test_the_agent_inside_sdv_serve_reads_the_broker_asks_the_cockpit_and_publishes_the_software(
    ecu: Ecu, build_vehicle_bundle: BuildVehicleBundle, tmp_path: Path
) -> None:
    parked = [Phase(600, speed=0.0, gear="P", parking_brake=True, state_of_charge=80.0)]
    config = _agent_config(ecu)
    with replaying(tmp_path, parked, "--ota-agent", str(config), "--ota-port", "0") as replay:
        target = _ota_target(replay)
        security = ChannelSecurity(token=replay.token("ota", "ota-server"))  # the agent shares the tokens
        with OtaClient(target, security=security) as client:
            client.push(build_vehicle_bundle(TERMS))
            install = Background(client.install)
            assert asyncio.run(_accept(replay)) == "Carol (head-unit)"
            assert install.join().state == ota_pb2.STATE_READY
            client.activate()
            committed = client.mark_good()
        assert committed.state == ota_pb2.STATE_ACTIVATED
        software = _kuksa_software(replay)
    assert software["Vehicle.Software.Version"] == "nav 2.5.0"
    assert software["Vehicle.Software.Rxswin"] == committed.vehicle.software_id
    checks = events(ecu.state_dir, "preconditions")
    assert checks[0]["data"]["met"] == 1
    assert "Vehicle.Speed=0.0 valid" in checks[0]["data"]["signals"]  # read from the replayed bus
    consent = events(ecu.state_dir, "consent")
    assert consent[0]["action"] == "accept" and consent[0]["reason"].startswith("Carol (head-unit) at ")


def test_an_agent_configured_for_a_remote_server_is_refused_inside_sdv_serve(
    ecu: Ecu, tmp_path: Path
) -> None:
    config = ecu.write_config(vehicle={"signals": {"server": "127.0.0.1:55555"}})
    profile = write_profile(tmp_path)
    (tmp_path / "drive.log").write_text("")
    done = subprocess.run(
        [sys.executable, *SERVE, "--port", "0", "--profile", str(profile), "--ota-agent", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPOSITORY,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    assert "recording" not in done.stderr  # refused before the HAL started
    assert done.stderr.strip().splitlines()[-2:] == [
        "sdv serve: 1 problem:",
        f"  {config}: vehicle.signals.server: inside sdv serve (--ota-agent) the agent reads the signals of its "
        "own process; remove the server, or run the agent as sdv ota agent",
    ]
