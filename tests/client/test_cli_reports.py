"""``sdv get/subscribe --json`` (value, unit, timestamp, status) and ``sdv set`` reporting what the vehicle then
says, against the demo vehicle served from this process."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime

import can

from tests.client.serving import ServerThread
from tests.client.test_cli import LOW_BEAM, Sdv

SPEED = "Vehicle.Speed"


def test_get_json_has_value_unit_timestamp_and_status(sdv: Sdv, server: ServerThread) -> None:
    result = sdv("get", SPEED, LOW_BEAM, "--json", "--server", server.target)
    assert result.code == 0, result.stderr
    speed, low_beam = (json.loads(line) for line in result.stdout.splitlines())
    assert (speed["path"], speed["unit"], speed["status"]) == (SPEED, "km/h", "valid")
    assert isinstance(speed["value"], float) and 0 <= speed["value"] <= 300
    assert speed["timestamp"].endswith("Z") and datetime.fromisoformat(speed["timestamp"])
    assert low_beam["path"] == LOW_BEAM and isinstance(low_beam["value"], bool) and low_beam["unit"] is None


def test_subscribe_json_streams_records(server: ServerThread) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sdv.cli.main", "subscribe", SPEED, "--json", "--server", server.target],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        record = json.loads(process.stdout.readline())
    finally:
        process.kill()
        _, errors = process.communicate(timeout=30)
    assert (record["path"], record["unit"], record["status"]) == (SPEED, "km/h", "valid"), errors
    assert datetime.fromisoformat(record["timestamp"])


def test_set_reports_what_the_vehicle_then_reports(
    sdv: Sdv, server: ServerThread, can_observer: can.BusABC
) -> None:
    result = sdv("set", LOW_BEAM, "true", "--server", server.target, "--observe", "0.5")
    assert result.code == 0, result.stderr
    requested, reported = result.stdout.splitlines()
    assert requested == f"{LOW_BEAM}: requested true: sent"
    # the demo drive's recording keeps feeding the body controller's status: whatever it says is reported
    match = re.fullmatch(rf"{re.escape(LOW_BEAM)}: the vehicle reports (true|false) \((.+)\)", reported)
    assert match, reported
    assert match[2] == ("as requested" if match[1] == "true" else "not what was requested")
