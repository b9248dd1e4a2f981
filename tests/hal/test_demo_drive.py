"""The example vehicle's DBC and the committed demo drive recording that the HAL decodes by default."""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import logging
import math
import sys
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import can
import cantools
import pytest

from sdv.hal import e2e

ROOT = Path(__file__).resolve().parents[2]
DBC = ROOT / "dbc" / "sdv_demo.dbc"
RECORDING = ROOT / "hal" / "recordings" / "demo_drive.log.gz"
GENERATOR = ROOT / "scripts" / "make_demo_drive.py"

# The names other modules code against: message -> (frame id, length, sender, signals).
CONTRACT: dict[str, tuple[int, int, str, set[str]]] = {
    "WheelSpeeds": (0x0AA, 8, "ABS", {"WheelSpeedFL", "WheelSpeedFR", "WheelSpeedRL", "WheelSpeedRR"}),
    "VehicleDynamics": (
        0x0B4,
        8,
        "ESP",
        {"VehicleSpeed", "YawRate", "LateralAcceleration", "LongitudinalAcceleration", "Counter", "Checksum"},
    ),
    "Steering": (0x025, 8, "EPS", {"SteeringAngle", "SteeringRate", "Counter", "Checksum"}),
    "Pedals": (0x0F0, 8, "VCU", {"AcceleratorPedalPosition", "BrakePedalPressed", "BrakePressure"}),
    "Gear": (0x1A0, 2, "VCU", {"GearPosition"}),
    "BatteryStatus": (
        0x18FF50E5,
        8,
        "BMS",
        {"StateOfCharge", "RemainingRange", "PackVoltage", "PackCurrent"},
    ),
    "BodyStatus": (
        0x3C0,
        8,
        "BCM",
        {
            "TurnIndicatorLeft",
            "TurnIndicatorRight",
            "DoorFrontLeftOpen",
            "DoorFrontRightOpen",
            "DoorRearLeftOpen",
            "DoorRearRightOpen",
            "TrunkOpen",
            "LowBeamOn",
            "HighBeamOn",
            "OutsideTemperature",
        },
    ),
    "ClimateStatus": (
        0x3D0,
        8,
        "HVAC",
        {"Page", "CabinTemperature", "TargetTemperature", "FanLevel", "AcActive", "Recirculation"},
    ),
    "DriverAssist": (
        0x200,
        64,
        "ADAS",
        {
            "LeadVehicleDistance",
            "LeadVehicleRelativeSpeed",
            "LaneDepartureWarning",
            "ForwardCollisionWarning",
            "Counter",
            "Checksum",
            "LaneOffset",
            "LaneCurvature",
        },
    ),
    "LightingRequest": (0x300, 8, "CCU", {"LowBeamRequest", "HighBeamRequest", "Counter", "Checksum"}),
    "ClimateRequest": (0x301, 8, "CCU", {"CabinTemperatureRequest", "Counter", "Checksum"}),
}
CYCLE_MS = {
    "WheelSpeeds": 10,
    "VehicleDynamics": 10,
    "Steering": 10,
    "Pedals": 20,
    "Gear": 100,
    "BatteryStatus": 1000,
    "BodyStatus": 100,
    "ClimateStatus": 200,
    "DriverAssist": 20,
}
# The E2E contract, written out here rather than taken from the generator so that the test checks it.
E2E_PROFILES: dict[str, tuple[str, int | None]] = {
    "VehicleDynamics": ("crc8_sae_j1850", 0x0B4),
    "Steering": ("byte_sum", None),
    "DriverAssist": ("crc8_sae_j1850", 0x200),
    "LightingRequest": ("crc8_sae_j1850", 0x300),
    "ClimateRequest": ("crc8_sae_j1850", 0x301),
}
GEAR_P, GEAR_D = 0, 3


def load_db() -> cantools.database.can.Database:
    db = cantools.database.load_file(str(DBC), strict=True)
    assert isinstance(db, cantools.database.can.Database)
    return db


def checksum_byte(message: Any) -> int:
    """Index of the payload byte that holds the message's checksum signal (which must fill that byte)."""
    signal = message.get_signal_by_name("Checksum")
    assert signal.length == 8
    assert signal.start % 8 == (7 if signal.byte_order == "big_endian" else 0), "checksum must fill a byte"
    return int(signal.start // 8)


@pytest.fixture(scope="module")
def db() -> cantools.database.can.Database:
    return load_db()


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_demo_drive", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


@dataclass
class Recording:
    """The committed recording, decoded once per module."""

    start: float
    end: float
    frames: dict[str, list[tuple[float, bytes]]]  # message -> [(seconds since start, payload)]
    signals: dict[str, dict[str, list[tuple[float, float]]]]  # message -> signal -> [(t, raw-choice value)]

    def values(self, message: str, signal: str) -> list[float]:
        return [value for _, value in self.signals[message][signal]]


@pytest.fixture(scope="module")
def recording(db: cantools.database.can.Database) -> Recording:
    frames: dict[str, list[tuple[float, bytes]]] = defaultdict(list)
    signals: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    start: float | None = None
    timestamp = 0.0
    for message in can.LogReader(str(RECORDING)):
        assert message.channel == "can0"
        timestamp = message.timestamp
        start = timestamp if start is None else start
        definition = db.get_message_by_frame_id(message.arbitration_id)  # KeyError: an unknown frame
        assert message.is_extended_id == definition.is_extended_frame
        assert message.is_fd == definition.is_fd
        assert len(message.data) == definition.length
        t = timestamp - start
        frames[definition.name].append((t, bytes(message.data)))
        decoded = definition.decode(bytes(message.data), decode_choices=False)
        assert isinstance(decoded, dict)
        for name, value in decoded.items():
            assert isinstance(value, int | float)
            signals[definition.name][name].append((t, float(value)))
    assert start is not None, "the recording is empty"
    return Recording(start=start, end=timestamp, frames=dict(frames), signals=dict(signals))


def test_dbc_loads_strictly_without_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG), warnings.catch_warnings():
        warnings.simplefilter("error")
        db = load_db()
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert db.dbc is not None and db.dbc.attributes["BusType"].value == "CAN FD"


def test_dbc_keeps_the_contract_names_ids_and_senders(db: cantools.database.can.Database) -> None:
    assert {message.name for message in db.messages} == set(CONTRACT)
    for name, (frame_id, length, sender, signal_names) in CONTRACT.items():
        message = db.get_message_by_name(name)
        assert (message.frame_id, message.length, message.senders) == (frame_id, length, [sender]), name
        assert {signal.name for signal in message.signals} == signal_names, name
        assert message.comment, f"{name} has no comment"
        assert all(signal.comment for signal in message.signals), f"{name} has signals without comment"
        assert message.cycle_time == CYCLE_MS.get(name), name


def test_dbc_has_fd_extended_and_multiplexed_messages(db: cantools.database.can.Database) -> None:
    assistant = db.get_message_by_name("DriverAssist")
    assert assistant.is_fd and not assistant.is_extended_frame
    # The lane signals lie beyond a classical frame, so the message cannot be sent as classical CAN.
    assert min(assistant.get_signal_by_name(name).start for name in ("LaneOffset", "LaneCurvature")) >= 64
    battery = db.get_message_by_name("BatteryStatus")
    assert battery.is_extended_frame and not battery.is_fd
    assert [message.name for message in db.messages if message.is_fd] == ["DriverAssist"]
    climate = db.get_message_by_name("ClimateStatus")
    assert climate.is_multiplexed()
    assert climate.get_signal_by_name("Page").is_multiplexer
    assert climate.get_signal_by_name("CabinTemperature").multiplexer_ids == [0]
    assert climate.get_signal_by_name("FanLevel").multiplexer_ids == [1]
    assert db.get_message_by_name("Gear").get_signal_by_name("GearPosition").choices == {
        0: "P",
        1: "R",
        2: "N",
        3: "D",
    }
    wheels = db.get_message_by_name("WheelSpeeds")
    assert {signal.byte_order for signal in wheels.signals} == {"big_endian"}
    for name in E2E_PROFILES:
        message = db.get_message_by_name(name)
        checksum_byte(message)
        assert message.get_signal_by_name("Counter").length == 4


def test_regeneration_is_byte_for_byte_reproducible(generator: ModuleType, tmp_path: Path) -> None:
    first, second = tmp_path / "a.log.gz", tmp_path / "b.log.gz"
    frames = generator.generate(first, duration=2.0)
    assert generator.generate(second, duration=2.0) == frames
    assert first.read_bytes() == second.read_bytes()
    assert frames == sum(2000 // cycle_ms for cycle_ms in CYCLE_MS.values())
    assert len(list(can.LogReader(str(first)))) == frames


def test_committed_recording_is_the_generators_output(generator: ModuleType, tmp_path: Path) -> None:
    # The simulation is causal, so a short run must be a prefix of the committed 180 s recording: a
    # generator changed without regenerating the recording fails here.
    short = tmp_path / "short.log.gz"
    generator.generate(short, duration=3.0)
    regenerated = gzip.decompress(short.read_bytes()).decode("ascii").splitlines()
    with gzip.open(RECORDING, "rt", encoding="ascii") as committed:
        prefix = [committed.readline().rstrip("\n") for _ in regenerated]
    assert prefix == regenerated


def test_recording_is_small_and_about_180_seconds(recording: Recording) -> None:
    assert RECORDING.stat().st_size < 2_000_000
    assert 179.0 < recording.end - recording.start < 181.0
    assert recording.start == pytest.approx(1_767_225_600.0, abs=0.01)


def test_recording_holds_every_cyclic_message_at_its_cycle_time(recording: Recording) -> None:
    assert set(recording.frames) == set(CYCLE_MS)  # the request messages are never recorded
    duration = recording.end - recording.start
    for name, cycle_ms in CYCLE_MS.items():
        times = [t for t, _ in recording.frames[name]]
        assert len(times) == pytest.approx(duration * 1000 / cycle_ms, abs=1), name
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) > cycle_ms / 1000 - 0.0005 and max(gaps) < cycle_ms / 1000 + 0.0005, name
    timestamps = sorted(t for frames in recording.frames.values() for t, _ in frames)
    assert len(set(timestamps)) == len(timestamps)


def test_every_checksum_verifies_and_counters_advance_by_one(
    db: cantools.database.can.Database, recording: Recording
) -> None:
    for name in ("VehicleDynamics", "Steering", "DriverAssist"):
        algorithm, data_id = E2E_PROFILES[name]
        function = e2e.checksum_function(algorithm)
        index = checksum_byte(db.get_message_by_name(name))
        for _, payload in recording.frames[name]:
            expected = e2e.compute_checksum(function, payload, frozenset({index}), data_id, 8)
            assert payload[index] == expected, name
        counters = [int(value) for value in recording.values(name, "Counter")]
        assert counters[0] == 0
        assert all((b - a) % 16 == 1 for a, b in itertools.pairwise(counters)), name


def test_drive_contains_what_it_promises(recording: Recording) -> None:
    speed = recording.values("VehicleDynamics", "VehicleSpeed")
    assert max(speed) > 100.0
    assert speed[0] == 0.0 and speed[-1] == 0.0
    assert min(recording.values("VehicleDynamics", "LongitudinalAcceleration")) < -6.0
    assert max(recording.values("Pedals", "BrakePressure")) > 60.0
    assert max(abs(angle) for angle in recording.values("Steering", "SteeringAngle")) > 90.0
    assert max(recording.values("BodyStatus", "TurnIndicatorLeft")) == 1
    assert max(recording.values("BodyStatus", "TurnIndicatorRight")) == 1
    assert max(recording.values("BodyStatus", "DoorFrontLeftOpen")) == 1
    assert max(recording.values("DriverAssist", "LaneDepartureWarning")) > 0
    # Gear: P at the start and the end, D in between.
    gears = [int(gear) for gear in recording.values("Gear", "GearPosition")]
    changes = [gear for previous, gear in zip([None, *gears], gears, strict=False) if gear != previous]
    assert changes[0] == GEAR_P and GEAR_D in changes and changes[-1] == GEAR_P
    # The low beam goes on once and stays on.
    low_beam = recording.values("BodyStatus", "LowBeamOn")
    assert low_beam[0] == 0 and low_beam[-1] == 1
    assert sum(1 for a, b in itertools.pairwise(low_beam) if a != b) == 1
    # Climate pages alternate frame by frame.
    pages = [int(page) for page in recording.values("ClimateStatus", "Page")]
    assert pages == [index % 2 for index in range(len(pages))]


def test_forward_collision_warning_precedes_the_hard_braking(recording: Recording) -> None:
    warning = next(t for t, value in recording.signals["DriverAssist"]["ForwardCollisionWarning"] if value)
    braking = next(
        t for t, value in recording.signals["VehicleDynamics"]["LongitudinalAcceleration"] if value < -5.0
    )
    assert 0.0 < braking - warning < 3.0


def test_indicators_blink_at_about_one_and_a_half_hertz(recording: Recording) -> None:
    samples = recording.signals["BodyStatus"]["TurnIndicatorLeft"]
    rising = [t for (_, a), (t, b) in itertools.pairwise(samples) if not a and b]
    periods = [b - a for a, b in itertools.pairwise(rising) if b - a < 2.0]
    assert periods and all(0.55 < period < 0.8 for period in periods)


def test_motion_signals_are_physically_consistent(recording: Recording) -> None:
    # WheelSpeeds and VehicleDynamics share the 10 ms cycle, so frame i of both describes the same instant.
    speed = recording.values("VehicleDynamics", "VehicleSpeed")
    yaw = recording.values("VehicleDynamics", "YawRate")
    lateral = recording.values("VehicleDynamics", "LateralAcceleration")
    left = [
        (fl + rl) / 2
        for fl, rl in zip(
            recording.values("WheelSpeeds", "WheelSpeedFL"),
            recording.values("WheelSpeeds", "WheelSpeedRL"),
            strict=True,
        )
    ]
    right = [
        (fr + rr) / 2
        for fr, rr in zip(
            recording.values("WheelSpeeds", "WheelSpeedFR"),
            recording.values("WheelSpeeds", "WheelSpeedRR"),
            strict=True,
        )
    ]
    assert len(left) == len(speed)
    turning = 0
    for index, kmh in enumerate(speed):
        # Circular motion: lateral acceleration = speed * yaw rate.
        assert lateral[index] == pytest.approx(kmh / 3.6 * math.radians(yaw[index]), abs=0.2), index
        if abs(yaw[index]) > 10.0:
            turning += 1
            # The wheels on the inside of the turn run on the shorter track.
            assert (left[index] < right[index]) == (yaw[index] > 0), index
        assert abs((left[index] + right[index]) / 2 - kmh) < 0.03 * kmh + 0.5, index
    assert turning > 100


def test_battery_drains_and_regenerates(recording: Recording) -> None:
    soc = recording.values("BatteryStatus", "StateOfCharge")
    remaining = recording.values("BatteryStatus", "RemainingRange")
    # Slowly: about a percent over the drive (regeneration may lift it for a moment).
    assert 0.3 < soc[0] - soc[-1] < 3.0
    assert remaining[-1] < remaining[0]
    current = recording.values("BatteryStatus", "PackCurrent")
    assert min(current) < -20.0 and max(current) > 100.0
    cabin = recording.values("ClimateStatus", "CabinTemperature")
    target = recording.values("ClimateStatus", "TargetTemperature")[-1]
    assert abs(cabin[-1] - target) < abs(cabin[0] - target)
