"""``sdv set`` and ``sdv get --target`` against a real ``sdv serve`` of the demo vehicle (its recording replayed).

The demo's low beam is an actuator whose current value the profile decodes from the body controller's status
message; the recording keeps replaying its own lights, so what the vehicle reports after a request is the
recording's value, and ``sdv set`` must say whether that is what was asked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime

import pytest

from sdv.cli.exit_codes import EXIT_FAILED
from tests.serve_process import serving
from tests.test_cli_exit_codes import Result, assert_one_clear_line, run

LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
CABIN_TEMPERATURE = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The address of ``sdv serve`` of the demo vehicle, for every test of this module."""
    with serving() as (port, _):
        yield f"127.0.0.1:{port}"


def sdv(server: str, *argv: str) -> Result:
    result = run(*argv, "--server", server)
    assert "Traceback" not in result.err, result.err
    return result


def test_get_target_before_any_request_has_no_value(server: str) -> None:
    result = sdv(server, "get", "--target", "Vehicle.Body.Lights.Beam.High.IsOn")
    assert (result.code, result.out) == (0, "Vehicle.Body.Lights.Beam.High.IsOn (target) = (no value)\n")


def test_get_target_reads_what_was_last_requested(server: str) -> None:
    for requested in ("true", "false"):
        assert sdv(server, "set", LOW_BEAM, requested, "--observe", "0").code == 0
        result = sdv(server, "get", "--target", LOW_BEAM)
        assert (result.code, result.out) == (0, f"{LOW_BEAM} (target) = {requested}\n"), result.err
    assert sdv(server, "set", CABIN_TEMPERATURE, "22", "--observe", "0").code == 0
    result = sdv(server, "get", "--target", "--json", CABIN_TEMPERATURE, LOW_BEAM)
    temperature, low_beam = (json.loads(line) for line in result.out.splitlines())
    assert {key: temperature[key] for key in ("path", "value", "unit", "status", "target")} == {
        "path": CABIN_TEMPERATURE,
        "value": 22,
        "unit": "celsius",
        "status": "valid",
        "target": True,
    }
    assert datetime.fromisoformat(temperature["timestamp"]).tzinfo is not None
    assert (low_beam["value"], low_beam["target"]) == (False, True)


def test_get_target_of_a_sensor_is_refused(server: str) -> None:
    assert_one_clear_line(
        sdv(server, "get", "--target", "Vehicle.Speed"),
        EXIT_FAILED,
        "sdv get: Vehicle.Speed is a sensor; only actuators have a target value",
    )


def test_set_reports_what_the_vehicle_reports_and_whether_it_follows(server: str) -> None:
    current = sdv(server, "get", LOW_BEAM).out.strip().rsplit(" ", 1)[-1]
    opposite = {"true": "false", "false": "true"}[current]
    for requested in (current, opposite):
        result = sdv(server, "set", LOW_BEAM, requested)
        assert result.code == 0, result.err
        sent, report = result.out.splitlines()
        assert sent == f"{LOW_BEAM}: requested {requested}: sent"
        match = re.fullmatch(rf"{re.escape(LOW_BEAM)}: the vehicle reports (true|false) \((.+)\)", report)
        assert match, report
        # the replayed status message decides what the vehicle reports; the verdict must agree with it
        assert match[2] == ("as requested" if match[1] == requested else "not what was requested"), report


def test_set_without_waiting_reports_nothing_observed(server: str) -> None:
    result = sdv(server, "set", LOW_BEAM, "true", "--observe", "0")
    assert (result.code, result.out) == (0, f"{LOW_BEAM}: requested true: sent\n")
