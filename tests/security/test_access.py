"""Scopes compiled into Access: KUKSA's grammar, one decision point, no partial parsing."""

from __future__ import annotations

import pytest

from sdv.broker.access import UNRESTRICTED, Action, ScopeError, parse_scope
from sdv.errors import AccessDenied

READ, ACTUATE, PROVIDE, OTA = Action.READ, Action.ACTUATE, Action.PROVIDE, Action.OTA

# scope, action, path, allowed
CASES = [
    ("read", READ, "Vehicle.Speed", True),
    ("read", ACTUATE, "Vehicle.Body.Lights.Beam.Low.IsOn", False),
    ("read:Vehicle.Speed", READ, "Vehicle.Speed", True),
    ("read:Vehicle.Speed", READ, "Vehicle.SpeedLimit", False),  # a path, not a string prefix
    ("read:Vehicle.Cabin", READ, "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen", True),  # a branch and below
    ("read:Vehicle.Cabin", READ, "Vehicle", False),
    ("read:Vehicle.Cabin.Seat.*.Position", READ, "Vehicle.Cabin.Seat.Row2.Position", True),
    ("read:Vehicle.Cabin.Seat.*.Position", READ, "Vehicle.Cabin.Seat.Row2.Pos", False),
    ("read:Vehicle.*.Speed", READ, "Vehicle.Cabin.Seat.Speed", False),  # * is exactly one level
    ("read:Vehicle.Cabin.Door.Row2", READ, "Vehicle.Cabin.Door.Row2.PassengerSide.IsOpen", True),
    ("read:Vehicle.Cabin.Door.2ndRow", READ, "Vehicle.Cabin.Door.2ndRow.IsOpen", True),
    ("actuate:Vehicle.Body.Lights", ACTUATE, "Vehicle.Body.Lights.Beam.Low.IsOn", True),
    ("actuate:Vehicle.Body.Lights", READ, "Vehicle.Body.Lights.Beam.Low.IsOn", True),  # actuate implies read
    ("actuate:Vehicle.Body.Lights", PROVIDE, "Vehicle.Body.Lights.Beam.Low.IsOn", False),
    ("actuate:Vehicle.Body.Lights", ACTUATE, "Vehicle.Cabin.HVAC.TargetTemperature", False),
    ("provide:Vehicle.Width", READ, "Vehicle.Width", True),  # provide implies read
    ("provide:Vehicle.Width", ACTUATE, "Vehicle.Width", False),
    ("provide", PROVIDE, "Vehicle.Speed", True),
    ("read:Vehicle.Speed actuate:Vehicle.Body.Lights", ACTUATE, "Vehicle.Body.Lights.Beam.Low.IsOn", True),
    ("read:Vehicle.Speed actuate:Vehicle.Body.Lights", READ, "Vehicle.Speed", True),
    ("ota", OTA, "", True),
    ("read actuate provide", OTA, "", False),
    ("", READ, "Vehicle.Speed", False),
]


@pytest.mark.parametrize(("scope", "action", "path", "allowed"), CASES)
def test_scope_grants_exactly_what_it_says(scope: str, action: Action, path: str, allowed: bool) -> None:
    assert parse_scope(scope).allows(action, path) is allowed


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ("write:Vehicle.Speed", "unknown action 'write'"),
        ("read:Vehicle..Speed", "path segment ''"),
        ("read:Vehicle.Spe-ed", "path segment 'Spe-ed'"),
        ("read:", "an empty path"),
        ("ota:Vehicle", "ota takes no path"),
        ("read:Vehicle.Speed actuate:Vehicle/Body", "'actuate:Vehicle/Body'"),
        # Only ASCII spaces separate entries: any other separator would be read one way by an issuer that
        # splits on spaces and another by a checker that splits on all whitespace (a no-break space once made
        # the second half a bare "read", granting everything).
        ("read:Vehicle.Cabin\u00a0read", r"U\+00A0 at position 18"),
        ("read:Vehicle.Cabin\tread", r"U\+0009 at position 18"),
        ("read:Vehicle.Cabin\nread", r"U\+000A at position 18"),
        ("read:Vehicle.Cabin\u2003read", r"U\+2003"),
        ("read:Vehicle.Cabin\u3000read", r"U\+3000"),
        ("read\x00", r"U\+0000"),
        ("read:Vehicle.Cab\u0131n", r"U\+0131"),  # a dotless i: not a letter of the grammar
        ("read:Vehicle.\uff23abin", r"U\+FF23"),  # a full-width C
        ("read:Vehicle.Cabin\u200bread", r"U\+200B"),  # a zero-width space
        ("read:Vehicle.Cabin" + " read:Vehicle.Speed" * 600, "at most 4096 characters"),
    ],
)
def test_malformed_scope_is_refused_as_a_whole(scope: str, message: str) -> None:
    with pytest.raises(ScopeError, match=message):
        parse_scope(scope)


def test_check_names_caller_action_and_path() -> None:
    access = parse_scope("read:Vehicle.Speed", "infotainment")
    access.check(READ, "Vehicle.Speed")
    with pytest.raises(AccessDenied, match=r"infotainment is not allowed to actuate Vehicle.Body"):
        access.check(ACTUATE, "Vehicle.Body.Lights.Beam.Low.IsOn")


def test_unrestricted_allows_everything() -> None:
    for action in Action:
        assert UNRESTRICTED.allows(action, "Any.Path.At.All")


@pytest.mark.parametrize(
    ("scope", "path", "allowed"),
    [
        ("read:Vehicle.Cabin  read:Vehicle.Speed", "Vehicle.Speed", True),  # runs of spaces separate too
        (" read:Vehicle.Speed ", "Vehicle.Speed", True),
        (" read:Vehicle.Speed ", "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen", False),
    ],
)
def test_entries_are_separated_by_ascii_spaces(scope: str, path: str, allowed: bool) -> None:
    assert parse_scope(scope).allows(READ, path) is allowed
