"""The frame processor on the demo vehicle: decoding, change detection, policies, bad frames, freshness, E2E."""

from __future__ import annotations

import can
import pytest

from sdv.hal.processor import FrameProcessor, SignalUpdate, Status
from sdv.hal.vehicle import VehicleDefinition

from .conftest import FrameFactory

SPEED = "Vehicle.Speed"


def by_path(updates: list[SignalUpdate]) -> dict[str, SignalUpdate]:
    return {update.path: update for update in updates}


@pytest.fixture
def processor(demo_vehicle: VehicleDefinition) -> FrameProcessor:
    return FrameProcessor(demo_vehicle)


def test_decodes_scaled_little_endian_signals_with_the_frame_timestamp(
    processor: FrameProcessor, frame: FrameFactory
) -> None:
    updates = by_path(
        processor.process(
            0, [frame("VehicleDynamics", {"VehicleSpeed": 87.5, "YawRate": -3.2}, timestamp=12.5)]
        )
    )
    assert updates[SPEED] == SignalUpdate(SPEED, 87.5, 12.5, Status.VALID)
    assert updates["Vehicle.AngularVelocity.Yaw"].value == pytest.approx(-3.2)
    assert isinstance(updates[SPEED].value, float)


def test_big_endian_signed_signals(processor: FrameProcessor, frame: FrameFactory) -> None:
    updates = by_path(processor.process(0, [frame("Steering", {"SteeringAngle": -123.6})]))
    angle = updates["Vehicle.Chassis.SteeringWheel.Angle"].value
    assert angle == -124 and isinstance(angle, int)  # VSS int16 degrees, rounded to the nearest


def test_only_changed_values_are_published(processor: FrameProcessor, frame: FrameFactory) -> None:
    first = processor.process(0, [frame("VehicleDynamics", {"VehicleSpeed": 50.0}, counter=0)])
    second = processor.process(
        0, [frame("VehicleDynamics", {"VehicleSpeed": 50.0}, counter=1, timestamp=0.01)]
    )
    third = processor.process(
        0, [frame("VehicleDynamics", {"VehicleSpeed": 51.0}, counter=2, timestamp=0.02)]
    )
    assert SPEED in by_path(first)
    assert second == []
    assert [u.path for u in third] == [SPEED]


def test_enumerated_value_maps_through_the_value_table(
    processor: FrameProcessor, frame: FrameFactory
) -> None:
    gear = "Vehicle.Powertrain.Transmission.SelectedGear"
    assert by_path(processor.process(0, [frame("Gear", {"GearPosition": 3})]))[gear].value == 127
    assert by_path(processor.process(0, [frame("Gear", {"GearPosition": 1})]))[gear].value == -1


def test_choice_labels_become_strings_for_string_signals(
    processor: FrameProcessor, frame: FrameFactory
) -> None:
    updates = by_path(processor.process(0, [frame("DriverAssist", {"LaneDepartureWarning": 2})]))
    assert updates["Vehicle.SDV.ADAS.LaneDepartureDetection.Side"].value == "Right"
    assert updates["Vehicle.ADAS.LaneDepartureDetection.IsWarning"].value is True


def test_linear_transform_and_integer_datatype(processor: FrameProcessor, frame: FrameFactory) -> None:
    updates = by_path(processor.process(0, [frame("BatteryStatus", {"RemainingRange": 345})]))
    assert updates["Vehicle.Powertrain.Range"].value == 345_000
    assert isinstance(updates["Vehicle.Powertrain.Range"].value, int)


def test_extended_id_message_is_routed(processor: FrameProcessor, frame: FrameFactory) -> None:
    message = frame("BatteryStatus", {"StateOfCharge": 55.5})
    assert message.is_extended_id and message.arbitration_id == 0x18FF50E5
    updates = by_path(processor.process(0, [message]))
    assert updates["Vehicle.Powertrain.TractionBattery.StateOfCharge.Displayed"].value == pytest.approx(55.5)
    standard_twin = can.Message(arbitration_id=0x18FF50E5 & 0x7FF, is_extended_id=False, data=message.data)
    assert processor.process(0, [standard_twin]) == []


def test_can_fd_signals_beyond_byte_eight(processor: FrameProcessor, frame: FrameFactory) -> None:
    message = frame("DriverAssist", {"LaneOffset": -0.25, "LeadVehicleDistance": 42.0})
    assert len(message.data) == 64
    updates = by_path(processor.process(0, [message]))
    assert updates["Vehicle.SDV.ADAS.Lane.Offset"].value == pytest.approx(-0.25)
    assert updates["Vehicle.SDV.ADAS.LeadVehicle.Distance"].value == pytest.approx(42.0)


def test_multiplexed_message_updates_only_the_active_branch(
    processor: FrameProcessor, frame: FrameFactory
) -> None:
    page0 = by_path(
        processor.process(
            0, [frame("ClimateStatus", {"Page": 0, "CabinTemperature": 22.5, "TargetTemperature": 21.5})]
        )
    )
    assert page0["Vehicle.Cabin.HVAC.AmbientAirTemperature"].value == 22.5
    # VSS 4.0 has whole degrees (int8) for the station temperature: rounded to the nearest, halves to even
    assert page0["Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"].value == 22
    assert "Vehicle.SDV.Cabin.HVAC.Station.Row1.Driver.FanLevel" not in page0
    # Page 1 reuses the bits of page 0: the temperatures must not pick up the fan level's bits.
    page1 = by_path(processor.process(0, [frame("ClimateStatus", {"Page": 1, "FanLevel": 5, "AcActive": 1})]))
    assert page1["Vehicle.SDV.Cabin.HVAC.Station.Row1.Driver.FanLevel"].value == 5
    assert page1["Vehicle.Cabin.HVAC.IsAirConditioningActive"].value is True
    assert "Vehicle.Cabin.HVAC.AmbientAirTemperature" not in page1


def test_min_interval_holds_back_and_then_delivers_the_latest_value(
    processor: FrameProcessor, frame: FrameFactory
) -> None:
    path = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed"  # min_interval_ms: 20 in the demo profile
    published = []
    for step, speed in enumerate([10.0, 11.0, 12.0, 12.0, 12.0]):
        updates = processor.process(0, [frame("WheelSpeeds", {"WheelSpeedFL": speed}, timestamp=step * 0.01)])
        published += [(u.timestamp, u.value) for u in updates if u.path == path]
    # 10 at t=0; 11 at t=0.01 held back; 12 at t=0.02 is due; nothing newer after that.
    assert published == [(0.0, 10.0), (0.02, 12.0)]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda f: can.Message(arbitration_id=0x7AB, is_extended_id=False, data=bytes(8)), "unknown_id"),
        (lambda f: can.Message(arbitration_id=0x0B4, is_extended_id=False, data=bytes(3)), "wrong_length"),
        (lambda f: f("VehicleDynamics", {}, corrupt_checksum=True), "e2e_checksum"),
        (
            lambda f: can.Message(
                arbitration_id=0x0AA, is_extended_id=False, data=bytes([0xFF, 0xFF]) + bytes(6)
            ),
            "out_of_range",
        ),
        (
            lambda f: can.Message(arbitration_id=0x0AA, is_extended_id=False, is_error_frame=True),
            "error_frame",
        ),
        # ClimateStatus's Page has branches 0 and 1 only.
        (lambda f: f("ClimateStatus", {"Page": 3}), "unknown_multiplexer"),
    ],
    ids=["unknown-id", "wrong-length", "bad-checksum", "out-of-dbc-range", "error-frame", "unknown-mux"],
)
def test_bad_frames_are_counted_by_reason_and_never_raise(
    processor: FrameProcessor,
    frame: FrameFactory,
    make: object,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = make(frame)  # type: ignore[operator]
    good = frame("VehicleDynamics", {"VehicleSpeed": 30.0}, counter=1)
    for _ in range(3):
        processor.process(0, [bad])
    updates = processor.process(0, [good])
    statistics = processor.statistics()["vehicle"]
    assert statistics.bad[reason] == 3
    assert statistics.frames == 4
    assert SPEED in by_path(updates)  # the HAL keeps decoding
    logged = [record for record in caplog.records if reason in record.getMessage()]
    assert len(logged) == 1  # once per message id and reason, then only counted


def test_wheel_speed_out_of_range_publishes_nothing(processor: FrameProcessor) -> None:
    frame = can.Message(arbitration_id=0x0AA, is_extended_id=False, data=bytes([0xFF, 0xFF]) + bytes(6))
    assert all(
        update.path != "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed"
        for update in processor.process(0, [frame])
    )


def test_freshness_timeout_marks_stale_and_recovery_republishes(
    processor: FrameProcessor, frame: FrameFactory
) -> None:
    # VehicleDynamics has a 10 ms cycle; the profile's timeout is 3 cycles.
    processor.process(0, [frame("VehicleDynamics", {"VehicleSpeed": 20.0}, counter=0, timestamp=1.000)])
    assert processor.check_freshness(1.025) == []
    stale = by_path(processor.check_freshness(1.031))
    assert stale[SPEED] == SignalUpdate(SPEED, 20.0, 1.031, Status.STALE)
    assert processor.check_freshness(1.5) == []  # reported once
    assert processor.message_states()["vehicle"]["VehicleDynamics"] == "stale"
    # The same value comes back: it is published again, valid.
    back = by_path(
        processor.process(0, [frame("VehicleDynamics", {"VehicleSpeed": 20.0}, counter=1, timestamp=1.6)])
    )
    assert back[SPEED] == SignalUpdate(SPEED, 20.0, 1.6, Status.VALID)
    assert processor.message_states()["vehicle"]["VehicleDynamics"] == "valid"


def test_bus_marked_unavailable_starts_over(processor: FrameProcessor, frame: FrameFactory) -> None:
    processor.process(0, [frame("VehicleDynamics", {"VehicleSpeed": 20.0}, counter=5, timestamp=1.0)])
    down = by_path(processor.mark_bus_unavailable(0, 2.0))
    assert down[SPEED] == SignalUpdate(SPEED, None, 2.0, Status.NOT_AVAILABLE)
    assert len(down) == sum(1 for signal in processor.vehicle.signals.values() if signal.source is not None)
    assert processor.check_freshness(100.0) == []  # no stale verdict on a bus that is down
    assert processor.message_states()["vehicle"]["VehicleDynamics"] == "not_received"
    assert processor.last_payload("vehicle", 0xB4, False) is None  # actuation falls back to DBC start values
    # The sender restarted too: its counter starts anywhere, the unchanged value is published again, valid.
    back = by_path(
        processor.process(0, [frame("VehicleDynamics", {"VehicleSpeed": 20.0}, counter=0, timestamp=3.0)])
    )
    assert back[SPEED] == SignalUpdate(SPEED, 20.0, 3.0, Status.VALID)
    assert processor.statistics()["vehicle"].bad["e2e_counter"] == 0


def test_messages_never_received_do_not_go_stale(processor: FrameProcessor) -> None:
    assert processor.check_freshness(1_000.0) == []
    assert processor.message_states()["vehicle"]["Gear"] == "not_received"


def test_e2e_checksum_failure_invalidates_until_a_good_frame(
    processor: FrameProcessor, frame: FrameFactory
) -> None:
    processor.process(0, [frame("VehicleDynamics", {"VehicleSpeed": 40.0}, counter=0)])
    failed = by_path(
        processor.process(
            0, [frame("VehicleDynamics", {"VehicleSpeed": 99.0}, counter=1, corrupt_checksum=True)]
        )
    )
    assert failed[SPEED].status is Status.E2E_FAILED
    assert failed[SPEED].value == 40.0  # the corrupted frame's value is not taken
    assert (
        processor.process(
            0, [frame("VehicleDynamics", {"VehicleSpeed": 99.0}, counter=2, corrupt_checksum=True)]
        )
        == []
    )
    good = by_path(processor.process(0, [frame("VehicleDynamics", {"VehicleSpeed": 40.0}, counter=3)]))
    assert good[SPEED] == SignalUpdate(SPEED, 40.0, 0.0, Status.VALID)


@pytest.mark.parametrize(
    ("first", "second"), [(5, 5), (5, 7), (15, 2)], ids=["repeated", "jumped", "wrapped-jump"]
)
def test_e2e_counter_must_advance_by_one(
    processor: FrameProcessor, frame: FrameFactory, first: int, second: int
) -> None:
    processor.process(0, [frame("VehicleDynamics", {"VehicleSpeed": 10.0}, counter=first)])
    updates = processor.process(0, [frame("VehicleDynamics", {"VehicleSpeed": 11.0}, counter=second)])
    assert by_path(updates)[SPEED].status is Status.E2E_FAILED
    assert processor.statistics()["vehicle"].bad["e2e_counter"] == 1


def test_e2e_counter_wraps_around(processor: FrameProcessor, frame: FrameFactory) -> None:
    processor.process(0, [frame("VehicleDynamics", {"VehicleSpeed": 10.0}, counter=15)])
    updates = processor.process(0, [frame("VehicleDynamics", {"VehicleSpeed": 11.0}, counter=0)])
    assert by_path(updates)[SPEED].status is Status.VALID
    assert processor.statistics()["vehicle"].bad == {}


def test_attributes_with_fixed_values(processor: FrameProcessor) -> None:
    updates = by_path(processor.attribute_updates(5.0))
    assert updates["Vehicle.Powertrain.TractionBattery.GrossCapacity"].value == 77
    assert updates["Vehicle.VehicleIdentification.Brand"].value == "SDV Demo"


@pytest.mark.slow
def test_demo_drive_loops_without_e2e_errors_at_the_seam(demo_vehicle: VehicleDefinition) -> None:
    from sdv.hal.sources import RecordingSource
    from sdv.resources import demo_recording

    source = RecordingSource("vehicle", demo_recording(), realtime=False, loop=True)
    processor = FrameProcessor(demo_vehicle)
    try:
        frames = 0
        while frames < 2 * 76_886 + 1_000:  # twice through the recording and into a third pass
            batch = source.receive(0.0)
            frames += len(batch)
            processor.process(0, batch)
    finally:
        source.close()
    statistics = processor.statistics()["vehicle"]
    assert statistics.bad == {}
    assert statistics.frames == frames


def test_a_bad_value_is_logged_once_with_its_details(
    processor: FrameProcessor, caplog: pytest.LogCaptureFixture
) -> None:
    short = can.Message(arbitration_id=0x0B4, is_extended_id=False, data=bytes(3))
    wild = can.Message(arbitration_id=0x0AA, is_extended_id=False, data=bytes([0xFF, 0xFF]) + bytes(6))
    for _ in range(100):  # details are built for the one that is logged, not for the 99 only counted
        processor.process(0, [short, wild])
    messages = [record.getMessage() for record in caplog.records]
    assert sum("wrong_length" in message for message in messages) == 1
    assert any("0x0B4" in message or "0xB4" in message for message in messages)
    assert any("(3 bytes, " in message and " has 8)" in message for message in messages)
    assert any("=" in message and " outside [" in message for message in messages)
