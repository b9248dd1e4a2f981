"""The federation's wire formats and its configuration, on their own (pure)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdv.errors import AccessDenied, ActuationError, OutcomeUnknownError, ProfileError, SdvError
from sdv.federation.codec import (
    FederationProtocolError,
    OwnedSignal,
    decode_announcement,
    decode_datapoint,
    decode_reply,
    decode_request,
    encode_announcement,
    encode_datapoint,
    encode_error_reply,
    encode_request,
)
from sdv.federation.downsampling import TelemetryQueue
from sdv.federation.keys import KeyLayout
from sdv.federation.patterns import PathPatterns
from sdv.federation_config import DownsampleRule
from sdv.hal.profile import parse_profile_text
from sdv.types.signals import Datapoint
from sdv.types.status import Status

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
)
arrays = st.lists(st.booleans() | st.integers(-1000, 1000) | st.text(max_size=5), max_size=5).map(tuple)


@given(
    value=scalars | arrays,
    timestamp=st.floats(min_value=0.001, max_value=4e9),
    status=st.sampled_from(list(Status)),
)
def test_a_datapoint_round_trips_with_its_status(value: object, timestamp: float, status: Status) -> None:
    datapoint = Datapoint(value, timestamp, status)  # type: ignore[arg-type]
    assert decode_datapoint(encode_datapoint(datapoint)) == datapoint


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "header"),
        (struct.pack("<dBB", 1.0, 9, 0), "status"),
        (struct.pack("<dBB", float("nan"), 0, 0), "timestamp"),
        (struct.pack("<dBB", 1.0, 0, 42), "tag"),
        (struct.pack("<dBB", 1.0, 0, 1) + b"\x07", "tag 1"),
        (struct.pack("<dBB", 1.0, 0, 2) + b"\x01\x02", "tag 2"),
        (struct.pack("<dBB", 1.0, 0, 5) + b"\xff\xfe", "tag 5"),
        (struct.pack("<dBB", 1.0, 0, 6) + b'{"a": 1}', "scalars"),
        (struct.pack("<dBB", 1.0, 0, 6) + b"[[1]]", "scalars"),
        (struct.pack("<dBB", 1.0, 0, 0) + b"x", "tag 0"),
    ],
)
def test_bytes_that_are_no_datapoint_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(FederationProtocolError, match=reason):
        decode_datapoint(data)


def test_requests_replies_and_announcements_round_trip() -> None:
    assert decode_request(encode_request(True, "token")) == (True, "token")
    owned = (OwnedSignal("Vehicle.Speed", "sensor", "float", False),)
    assert decode_announcement(encode_announcement("a", owned)).signals == owned
    error = decode_reply(encode_error_reply(AccessDenied("app may not actuate")), "c")
    assert isinstance(error, AccessDenied) and str(error) == "ECU c: app may not actuate"
    nearest = decode_reply(encode_error_reply(OutcomeUnknownError("no answer")), "c")
    assert type(nearest) is OutcomeUnknownError


class _Private(SdvError):
    """An error the reply format does not name."""


@pytest.mark.parametrize(
    "data", [b"not json", b"[]", b'{"token": 3, "value": 1}', b'{"token": null}', b"\xff"]
)
def test_malformed_requests_are_refused(data: bytes) -> None:
    with pytest.raises(FederationProtocolError):
        decode_request(data)


@pytest.mark.parametrize(
    "data", [b"{", b'{"ecu": 1, "signals": []}', b'{"ecu": "a", "signals": [["x"]]}', b'{"ecu": "a"}']
)
def test_malformed_announcements_are_refused(data: bytes) -> None:
    with pytest.raises(FederationProtocolError):
        decode_announcement(data)


def test_an_unreadable_or_unnamed_error_reply_becomes_an_actuation_error() -> None:
    assert type(decode_reply(b"garbage", "c")) is ActuationError
    assert type(decode_reply(encode_error_reply(_Private("x")), "c")) is ActuationError


def test_keys_map_paths_both_ways() -> None:
    layout = KeyLayout("car1")
    assert layout.signal("Vehicle.Speed") == "sdv/car1/sig/Vehicle/Speed"
    assert layout.path_of("sdv/car1/sig/Vehicle/Speed") == "Vehicle.Speed"
    assert layout.path_of("sdv/car2/sig/Vehicle/Speed") is None
    assert layout.ecu_of("sdv/car1/ecu/zone-front") == "zone-front"
    assert layout.ecu_of("sdv/car1/ecu/a/b") is None


def test_patterns_match_a_path_and_what_is_below_it() -> None:
    patterns = PathPatterns.compile(["Vehicle.Cabin.*.IsOn", "Vehicle.Speed"])
    assert patterns.matches("Vehicle.Cabin.Light.IsOn")
    assert patterns.matches("Vehicle.Speed") and not patterns.matches("Vehicle.SpeedLimit")
    assert not PathPatterns.compile([]).matches("Vehicle.Speed")
    assert PathPatterns.compile(["**"]).matches("Vehicle.Speed")


def test_downsampling_holds_the_latest_value_and_the_buffer_drops_the_oldest() -> None:
    queue = TelemetryQueue([DownsampleRule(pattern="Vehicle.Speed", min_interval_ms=1000)], buffer_size=3)
    for step, value in enumerate((1.0, 2.0, 3.0)):
        queue.offer("Vehicle.Speed", Datapoint(value, step, Status.VALID), now=step * 0.1)
    assert [datapoint.value for _, datapoint in queue.take()] == [1.0]  # 2.0 replaced by 3.0, held
    queue.release_held(now=1.0)
    assert [datapoint.value for _, datapoint in queue.take()] == [3.0]
    for step in range(5):  # no rule: every value, while the link is down
        queue.offer("Vehicle.Trunk", Datapoint(step, step, Status.VALID), now=2.0 + step)
    assert [datapoint.value for _, datapoint in queue.take()] == [2, 3, 4] and queue.dropped == 2


_PROFILE = """
buses: [{name: body, interface: virtual, dbc: [x.dbc]}]
federation:
  vehicle: car1
  ecu: ECU
  listen: [ENDPOINT]
"""


@pytest.mark.parametrize(
    ("ecu", "endpoint", "message"),
    [
        ("Front ECU", "tcp/127.0.0.1:7447", "line 5: federation.ecu: Value error, 'Front ECU' is not a name"),
        ("a", "127.0.0.1:7447", "federation.listen: Value error, '127.0.0.1:7447' is not an endpoint"),
        ("a", "tls/127.0.0.1:7447", "federation: Value error, tls/127.0.0.1:7447 needs 'tls'"),
    ],
)
def test_a_bad_federation_section_is_located(ecu: str, endpoint: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile_text(_PROFILE.replace("ECU", ecu).replace("ENDPOINT", endpoint), "vehicle.yaml")
    assert message.replace("Value error, ", "") in str(caught.value)
