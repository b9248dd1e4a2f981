"""The profile's ``services`` section: every problem is reported with its key path and line."""

from __future__ import annotations

import pytest

from sdv.errors import ProfileError
from sdv.hal.vehicle import VehicleDefinition, vehicle_from_text
from sdv.resources import demo_profile
from sdv.services import ADAS_FIELDS, COCKPIT_FIELDS, Family, family_of


def _with_services(section: str) -> str:
    """The demo profile with its ``services`` section replaced by ``section``."""
    text = demo_profile().read_text(encoding="utf-8")
    head = text[: text.index("\nservices:")]
    return head + "\n" + section


def _problems(section: str) -> list[str]:
    with pytest.raises(ProfileError) as raised:
        vehicle_from_text(_with_services(section), str(demo_profile()))
    return [f"{problem.location}: {problem.message}" for problem in raised.value.problems]


def test_the_demo_profile_maps_every_field_of_both_services(demo_vehicle: VehicleDefinition) -> None:
    assert set(demo_vehicle.config.services.cockpit) == set(COCKPIT_FIELDS)
    assert set(demo_vehicle.config.services.adas) == set(ADAS_FIELDS)


def test_a_profile_without_services_maps_nothing() -> None:
    text = _with_services("")
    vehicle = vehicle_from_text(text, str(demo_profile()))
    assert vehicle.config.services.cockpit == {}
    assert vehicle.config.services.adas == {}


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        pytest.param(
            "services:\n  cockpit:\n    sped: Vehicle.Speed\n",
            "services.cockpit.sped: the cockpit service has no field 'sped'; did you mean speed?",
            id="unknown-field",
        ),
        pytest.param(
            "services:\n  adas:\n    yaw_rate: Vehicle.AngularVelocity.Yawn\n",
            "services.adas.yaw_rate: no signal 'Vehicle.AngularVelocity.Yawn' in this profile; "
            "did you mean Vehicle.AngularVelocity.Yaw?",
            id="unknown-path",
        ),
        pytest.param(
            "services:\n  cockpit:\n    speed: Vehicle.SDV.Chassis.Brake.IsDriverBraking\n",
            "services.cockpit.speed: Vehicle.SDV.Chassis.Brake.IsDriverBraking is a boolean signal; "
            "the field speed needs a number datatype",
            id="boolean-for-number",
        ),
        pytest.param(
            "services:\n  adas:\n    brake_pressed: Vehicle.SDV.ADAS.LaneDepartureDetection.Side\n",
            "services.adas.brake_pressed: Vehicle.SDV.ADAS.LaneDepartureDetection.Side is a string signal; "
            "the field brake_pressed needs a boolean datatype",
            id="string-for-boolean",
        ),
        pytest.param(
            "services:\n  adas:\n    lead_vehicle_relative_speed: Vehicle.Speed\n",
            "services.adas.lead_vehicle_relative_speed: Vehicle.Speed is in km/h; "
            "the field lead_vehicle_relative_speed is in m/s",
            id="wrong-unit",
        ),
        pytest.param(
            "services:\n  cockpit:\n    target_cabin_temperature: Vehicle.Cabin.HVAC.AmbientAirTemperature\n",
            "services.cockpit.target_cabin_temperature: Vehicle.Cabin.HVAC.AmbientAirTemperature is a sensor; "
            "the field target_cabin_temperature is commanded, so it needs an actuator",
            id="command-on-a-sensor",
        ),
    ],
)
def test_a_bad_mapping_is_a_located_profile_problem(section: str, expected: str) -> None:
    problems = _problems(section)
    assert len(problems) == 1, problems
    line, _, rest = problems[0].partition(": ")
    assert line.startswith("line ")
    assert rest == expected


def test_an_unknown_service_is_refused() -> None:
    problems = _problems("services:\n  navigation:\n    speed: Vehicle.Speed\n")
    assert problems == [
        problems[0].split(": ")[0] + ": services.navigation: unknown field (check the spelling)"
    ]


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems("services:\n  cockpit:\n    sped: Vehicle.Speed\n  adas:\n    speed: Vehicle.Nope\n")
    assert [problem.split(": ")[1] for problem in problems] == [
        "services.cockpit.sped",
        "services.adas.speed",
    ]


@pytest.mark.parametrize(
    ("datatype", "family"),
    [
        ("boolean", Family.BOOLEAN),
        ("string", Family.STRING),
        ("uint8", Family.NUMBER),
        ("double", Family.NUMBER),
    ],
)
def test_datatype_families(datatype: str, family: Family) -> None:
    assert family_of(datatype) is family


def test_an_unknown_datatype_has_no_family() -> None:
    with pytest.raises(ValueError, match="'complex'"):
        family_of("complex")
