"""Actuation through the HAL: validation, encoding into the request message, E2E, and the frame on the bus."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import can
import pytest
import yaml

from sdv.errors import ReadOnlyError, UnknownSignalError, ValueOutOfRangeError
from sdv.hal.e2e import checksum_function, compute_checksum
from sdv.hal.processor import SignalUpdate, Status
from sdv.hal.runtime import Hal
from sdv.hal.sources import BusSource
from sdv.hal.vehicle import VehicleDefinition, load_vehicle
from sdv.resources import demo_profile

from ..waiting import DEADLINE_S
from .conftest import build_frame


@pytest.fixture
def live_vehicle(tmp_path: Path) -> VehicleDefinition:
    """The demo profile on a python-can virtual bus instead of the recording."""
    data = yaml.safe_load(demo_profile().read_text())
    bus = data["buses"][0]
    bus.pop("recording")
    bus.update(
        interface="virtual", channel=f"test-{tmp_path.name}", dbc=[str(demo_profile().parent / bus["dbc"][0])]
    )
    path = tmp_path / "live.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_vehicle(path)


@pytest.fixture
def hal(live_vehicle: VehicleDefinition) -> Iterator[Hal]:
    hal = Hal(live_vehicle)
    hal.open()
    yield hal
    hal.stop()


@pytest.fixture
def observer(live_vehicle: VehicleDefinition) -> Iterator[can.BusABC]:
    channel = live_vehicle.config.buses[0].channel
    bus = can.Bus(interface="virtual", channel=channel)
    yield bus
    bus.shutdown()


def crc_ok(vehicle: VehicleDefinition, message: str, data: bytes) -> bool:
    codec = vehicle.codec("vehicle", message)
    e2e = vehicle.messages[("vehicle", message)].e2e
    assert e2e is not None
    checksum = codec.signal(e2e.checksum)
    expected = compute_checksum(
        checksum_function(e2e.algorithm), data, checksum.covered_bytes(8 * codec.length), e2e.data_id, 8
    )
    return codec.decode(data)[e2e.checksum] == expected


def test_write_sends_the_encoded_request_frame(
    hal: Hal, observer: can.BusABC, live_vehicle: VehicleDefinition
) -> None:
    sent = hal.write("Vehicle.Body.Lights.Beam.Low.IsOn", True)
    received = observer.recv(1.0)
    assert received is not None
    assert received.arbitration_id == 0x300 and not received.is_extended_id
    assert bytes(received.data) == bytes(sent.data)
    decoded = live_vehicle.codec("vehicle", "LightingRequest").decode(received.data)
    assert decoded["LowBeamRequest"] == 1
    assert crc_ok(live_vehicle, "LightingRequest", bytes(received.data))


def test_counter_advances_and_other_signals_keep_their_last_values(
    hal: Hal, live_vehicle: VehicleDefinition
) -> None:
    codec = live_vehicle.codec("vehicle", "LightingRequest")
    first = codec.decode(hal.write("Vehicle.Body.Lights.Beam.High.IsOn", True).data)
    # The body controller's own copy of the request message shows the low beam requested: keep that bit.
    echo = build_frame(
        live_vehicle, "LightingRequest", {"LowBeamRequest": 1, "HighBeamRequest": 1}, counter=first["Counter"]
    )
    hal.processor.process(0, [echo])
    second = codec.decode(hal.write("Vehicle.Body.Lights.Beam.High.IsOn", False).data)
    assert second["Counter"] == (first["Counter"] + 1) % 16
    assert second["HighBeamRequest"] == 0
    assert second["LowBeamRequest"] == 1


def test_scaled_actuator_is_encoded_in_dbc_units(hal: Hal, live_vehicle: VehicleDefinition) -> None:
    frame = hal.write("Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature", 21)
    decoded = live_vehicle.codec("vehicle", "ClimateRequest").decode(frame.data)
    assert decoded["CabinTemperatureRequest"] == 21.0
    assert crc_ok(live_vehicle, "ClimateRequest", bytes(frame.data))


@pytest.mark.parametrize(
    ("path", "value", "error", "fragment"),
    [
        (
            "Vehicle.Body.Lights.Beam.Low.IsOnn",
            True,
            UnknownSignalError,
            "did you mean Vehicle.Body.Lights.Beam.Low.IsOn",
        ),
        ("Vehicle.Speed", 10.0, ReadOnlyError, "Vehicle.Speed is a sensor"),
        ("Vehicle.Body.Lights.Beam.Low.IsOn", "yes", ValueOutOfRangeError, "expected a boolean"),
        (
            "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature",
            35.0,
            ValueOutOfRangeError,
            "above the maximum 30",
        ),
        (
            "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature",
            10,
            ValueOutOfRangeError,
            "below the minimum 16",
        ),
        (
            "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature",
            True,
            ValueOutOfRangeError,
            "expected an integer (int8), got True",
        ),
        (
            "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature",
            21.5,
            ValueOutOfRangeError,
            "expected an integer (int8), got 21.5",
        ),
        (
            "Vehicle.Powertrain.Transmission.SelectedGear",
            127,
            ReadOnlyError,
            "the HAL only reads: the profile names no request message",
        ),
    ],
    ids=[
        "unknown-path",
        "read-only",
        "wrong-type",
        "above-max",
        "below-min",
        "bool-for-integer",
        "fraction-for-whole-degrees",
        "actuator-the-hal-only-reads",
    ],
)
def test_bad_requests_are_refused_and_nothing_is_sent(
    hal: Hal, observer: can.BusABC, path: str, value: object, error: type[Exception], fragment: str
) -> None:
    with pytest.raises(error) as caught:
        hal.write(path, value)
    assert fragment in str(caught.value)
    assert observer.recv(0.05) is None


def test_started_hal_decodes_live_frames_and_stops_its_threads(live_vehicle: VehicleDefinition) -> None:
    sender = can.Bus(interface="virtual", channel=live_vehicle.config.buses[0].channel)
    received: list[SignalUpdate] = []
    arrived = threading.Event()

    def consume(updates: list[SignalUpdate]) -> None:
        received.extend(updates)
        if any(update.path == "Vehicle.Speed" for update in updates):
            arrived.set()

    threads_before = threading.active_count()
    hal = Hal(live_vehicle)
    hal.start(consume)
    try:
        sender.send(build_frame(live_vehicle, "VehicleDynamics", {"VehicleSpeed": 63.2}))
        assert arrived.wait(5.0)
    finally:
        hal.stop()
        sender.shutdown()
    speeds = [(u.value, u.status) for u in received if u.path == "Vehicle.Speed"]
    assert speeds[0] == (pytest.approx(63.2), Status.VALID)
    # No further frames: freshness monitoring on the wall clock marks the value stale.
    assert speeds[1:] in ([], [(pytest.approx(63.2), Status.STALE)])
    assert threading.active_count() == threads_before


def test_given_sources_replace_the_profile_buses(live_vehicle: VehicleDefinition) -> None:
    bus = can.Bus(interface="virtual", channel="elsewhere")
    hal = Hal(live_vehicle, sources={"vehicle": BusSource("vehicle", bus)})
    hal.open()
    try:
        assert hal.sources["vehicle"].bus is bus  # type: ignore[attr-defined]
    finally:
        hal.stop()


def test_a_request_is_sent_while_the_consumer_is_stuck_in_a_batch(
    live_vehicle: VehicleDefinition, observer: can.BusABC
) -> None:
    stuck = threading.Event()
    release = threading.Event()

    def consumer(updates: list[SignalUpdate]) -> None:
        if threading.current_thread().name.startswith("sdv-hal-"):
            stuck.set()
            release.wait(DEADLINE_S)

    hal = Hal(live_vehicle)
    hal.start(consumer)
    try:
        observer.send(can.Message(arbitration_id=0x7AB, is_extended_id=False, data=bytes(8)))
        assert stuck.wait(DEADLINE_S), "the reader never delivered a batch"
        sent: list[can.Message] = []
        writer = threading.Thread(
            target=lambda: sent.append(hal.write("Vehicle.Body.Lights.Beam.Low.IsOn", True))
        )
        writer.start()
        writer.join(DEADLINE_S)
        assert sent, "the request waited behind the consumer's batch"
        assert hal.statistics()["vehicle"].frames == 1  # nor do the counters wait for the consumer
    finally:
        release.set()
        hal.stop()
