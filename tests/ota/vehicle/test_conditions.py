"""The precondition language: parsing with located errors, fail-safe evaluation, the manifest's vehicle terms."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdv.errors import ConfigError
from sdv.ota.bundle.conditions import MAX_CONDITION_CHARS, MAX_DEPTH, parse_condition
from sdv.ota.bundle.vehicle_terms import VehicleTerms, load_vehicle_terms
from sdv.ota.errors import PreconditionSyntaxError
from sdv.types.signals import Datapoint
from sdv.types.status import Status

NOW = 1_800_000_000.0


def _valid(value: object, age: float = 0.0) -> Datapoint:
    return Datapoint(value, NOW - age, Status.VALID)  # type: ignore[arg-type]


GEAR_NAMES = {"Vehicle.Powertrain.Transmission.SelectedGear": {"PARK": 126}}


@pytest.mark.parametrize(
    ("text", "values", "met"),
    [
        ("Vehicle.Speed == 0", {"Vehicle.Speed": 0.0}, True),
        ("Vehicle.Speed == 0", {"Vehicle.Speed": 3.5}, False),
        ("Vehicle.Speed < 0.5", {"Vehicle.Speed": 0.2}, True),
        ("Vehicle.A.Soc >= 30", {"Vehicle.A.Soc": 30}, True),
        ("Vehicle.A.Soc >= 30", {"Vehicle.A.Soc": 29.9}, False),
        (
            "Vehicle.Powertrain.Transmission.SelectedGear == PARK",
            {"Vehicle.Powertrain.Transmission.SelectedGear": 126},
            True,
        ),
        (
            "Vehicle.Powertrain.Transmission.SelectedGear == PARK",
            {"Vehicle.Powertrain.Transmission.SelectedGear": 127},
            False,
        ),
        ("Vehicle.Ignition.State == 'OFF'", {"Vehicle.Ignition.State": "OFF"}, True),
        ("Vehicle.Ignition.State != OFF", {"Vehicle.Ignition.State": "OFF"}, False),
        ("Vehicle.Chassis.ParkingBrake.IsEngaged", {"Vehicle.Chassis.ParkingBrake.IsEngaged": True}, True),
        ("Vehicle.Chassis.ParkingBrake.IsEngaged", {"Vehicle.Chassis.ParkingBrake.IsEngaged": False}, False),
        ("not Vehicle.B.IsCharging", {"Vehicle.B.IsCharging": False}, True),
        ("Vehicle.B.IsCharging == true", {"Vehicle.B.IsCharging": True}, True),
        ("Vehicle.A.X == 1 or Vehicle.A.Y == 1", {"Vehicle.A.X": 0, "Vehicle.A.Y": 1}, True),
        ("Vehicle.A.X == 1 and Vehicle.A.Y == 1", {"Vehicle.A.X": 0, "Vehicle.A.Y": 1}, False),
        ("not (Vehicle.A.X == 1 and Vehicle.A.Y == 1)", {"Vehicle.A.X": 0, "Vehicle.A.Y": 1}, True),
        ("Vehicle.A.X > 'text'", {"Vehicle.A.X": 3}, False),  # a number against a string: unmet, no error
        ("Vehicle.A.Flag == 1", {"Vehicle.A.Flag": True}, False),  # a boolean is not the number 1
        ("Vehicle.A.X", {"Vehicle.A.X": 1}, False),  # a bare test needs a boolean true
    ],
)
def test_evaluation(text: str, values: dict[str, object], met: bool) -> None:
    result = parse_condition(text).evaluate(
        {path: _valid(value) for path, value in values.items()}, names=GEAR_NAMES
    )
    assert result.met is met, result.reason
    assert [reading.path for reading in result.readings] == list(values)
    assert (result.reason is None) is met


@pytest.mark.parametrize("status", [Status.STALE, Status.E2E_FAILED, Status.NOT_AVAILABLE])
@pytest.mark.parametrize(
    "text", ["Vehicle.B.IsCharging", "not Vehicle.B.IsCharging", "not not Vehicle.B.IsCharging"]
)
def test_an_untrusted_signal_is_unmet_whatever_the_operators(text: str, status: Status) -> None:
    for value in (True, False):
        result = parse_condition(text).evaluate({"Vehicle.B.IsCharging": Datapoint(value, NOW, status)})
        assert not result.met
        assert result.reason == f"Vehicle.B.IsCharging is {status.value.replace('_', ' ')} (counts as unmet)"
        assert result.readings[0].value is None


def test_a_missing_signal_and_a_value_too_old_are_unmet() -> None:
    condition = parse_condition("Vehicle.Speed == 0 or Vehicle.Other.Speed == 0")
    assert not condition.evaluate({"Vehicle.Speed": _valid(0.0)}).met  # Vehicle.Other.Speed not available
    fresh = {"Vehicle.Speed": _valid(0.0, age=1), "Vehicle.Other.Speed": _valid(0.0, age=1)}
    assert condition.evaluate(fresh, now=NOW, max_age_s=5).met
    old = {**fresh, "Vehicle.Other.Speed": _valid(0.0, age=6)}
    result = condition.evaluate(old, now=NOW, max_age_s=5)
    assert not result.met and "Vehicle.Other.Speed is too old" in (result.reason or "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Vehicle.Speed ==", "at character 17: the condition ends; expected a number"),
        ("Speed == 0", "at character 1: 'Speed'; expected a signal path"),
        ("Vehicle.Speed == 0 )", "at character 20: ')' after a complete condition"),
        ("(Vehicle.Speed == 0", "no closing parenthesis; expected ')'"),
        ("Vehicle.Speed $ 3", "at character 15: an unexpected character"),
        ("Vehicle.Speed == Vehicle.Other", "'Vehicle.Other'; expected a number"),
        ("__import__('os').system('x')", "at character 17: an unexpected character"),
        ("Vehicle.Speed == 0 and", "the condition ends; expected a signal path"),
        ("   ", "the condition is empty"),
        ("x" * (MAX_CONDITION_CHARS + 1), "longer than"),
        ("not " * (MAX_DEPTH + 2) + "Vehicle.A.B", "nesting deeper"),
        ("(" * (MAX_DEPTH + 2) + "Vehicle.A.B" + ")" * (MAX_DEPTH + 2), "nesting deeper"),
    ],
)
def test_syntax_errors_name_the_place_and_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(PreconditionSyntaxError, match="manifest x") as caught:
        parse_condition(text, "manifest x")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_vehicle_terms_refuse_a_bad_condition_with_its_index(tmp_path: Path) -> None:
    terms = tmp_path / "terms.yaml"
    terms.write_text(
        "preconditions:\n  - Vehicle.Speed == 0\n  - Vehicle.Speed >>= 1\nenergy: {duration_s: 10, energy_wh: -1}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_vehicle_terms(terms)
    text = str(caught.value)
    assert ("vehicle.preconditions[1]" in text and "line 3" in text) or "preconditions" in text
    assert "energy.energy_wh" in text
    assert VehicleTerms(preconditions=["Vehicle.Speed == 0"]).preconditions == ["Vehicle.Speed == 0"]
