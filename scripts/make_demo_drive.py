"""Generate the demo drive recording of the example vehicle (``dbc/sdv_demo.dbc``).

The recording is what the HAL decodes by default, so it must be reproducible byte for byte: the simulation
uses a fixed seed, a fixed time step, a fixed start epoch, and the gzip header carries neither a file name
nor a modification time. It is also causal: the frames of the first N seconds do not depend on the chosen
duration, so a short regeneration is a prefix of the committed recording.

The drive (default 180 s):

* 0-10 s: parked in P, the driver's door opens and closes, brake pressed, P -> D.
* 10-63 s: city with stop-and-go behind another car up to ~50 km/h, a left and a right turn
  (indicators blinking at 1.5 Hz, steering up to 200 deg).
* 63-126 s: highway at 116-120 km/h with gentle curves, a tunnel (low beam on from there on, recirculation),
  a lane departure to the left, a lead car braking hard: forward collision warning, then the driver
  brakes at about -7 m/s^2.
* 126-180 s: back to the city, a right turn, stop, P, the driver's door opens.

Usage::

    python scripts/make_demo_drive.py [-o PATH] [--duration SECONDS]
"""

from __future__ import annotations

import argparse
import gzip
import io
import math
import random
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cantools

try:
    from sdv.hal import e2e
except ModuleNotFoundError:  # run from a checkout in which the package is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from sdv.hal import e2e

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DBC = ROOT / "dbc" / "sdv_demo.dbc"
DEFAULT_OUTPUT = ROOT / "hal" / "recordings" / "demo_drive.log.gz"
# 180 s of driving plus 0.48 s parked: every E2E-protected message then sends a multiple of 16 frames, so its
# 4-bit alive counter continues seamlessly when the recording is replayed in a loop.
DEFAULT_DURATION = 180.48

EPOCH = 1_767_225_600
"""Timestamp of the first tick (2026-01-01 00:00:00 UTC): fixed so that the output is reproducible."""
SEED = 20_260_101
CHANNEL = "can0"
TICK_MS = 10
TICK = TICK_MS / 1000.0

SCHEDULE: tuple[tuple[str, int, int], ...] = (
    # (message, cycle time in ms, phase offset in µs after the tick). Distinct offsets keep the frame order
    # within a tick fixed and spread the frames over the tick like real ECUs with unsynchronised clocks.
    ("Steering", 10, 350),
    ("WheelSpeeds", 10, 1_120),
    ("VehicleDynamics", 10, 1_870),
    ("Pedals", 20, 2_930),
    ("DriverAssist", 20, 4_260),
    ("Gear", 100, 5_610),
    ("BodyStatus", 100, 6_480),
    ("ClimateStatus", 200, 7_350),
    ("BatteryStatus", 1000, 8_720),
)
JITTER_US = 60
"""Deterministic timestamp jitter, smaller than the gap between phase offsets so the order never changes."""

E2E_PROFILES: dict[str, tuple[str, int | None]] = {
    # message -> (checksum algorithm, data id); counters step by 1 modulo 16.
    "VehicleDynamics": ("crc8_sae_j1850", 0x0B4),
    "Steering": ("byte_sum", None),
    "DriverAssist": ("crc8_sae_j1850", 0x200),
    "LightingRequest": ("crc8_sae_j1850", 0x300),
    "ClimateRequest": ("crc8_sae_j1850", 0x301),
}

GEAR_P, GEAR_R, GEAR_N, GEAR_D = 0, 1, 2, 3
LDW_NONE, LDW_LEFT, LDW_RIGHT = 0, 1, 2

# Vehicle: a mid-size electric car.
MASS = 2050.0  # kg
WHEELBASE = 2.9  # m
TRACK = 1.6  # m
STEERING_RATIO = 15.0
DRAG_AREA = 0.62  # Cd * A, m^2
AIR_DENSITY = 1.2  # kg/m^3
ROLLING_RESISTANCE = 0.011
GRAVITY = 9.81
BATTERY_CAPACITY_WH = 77_000.0
CONSUMPTION_WH_PER_KM = 165.0
AUX_POWER_W = 900.0
AC_POWER_W = 1_400.0
MAX_REGEN_POWER_W = 60_000.0
PACK_RESISTANCE = 0.085  # ohm
NO_LEAD_DISTANCE = 250.0  # m, what DriverAssist reports when no vehicle is tracked

# Speed targets of the driver: (from time s, target km/h, max acceleration m/s^2, max deceleration m/s^2).
SPEED_PLAN: tuple[tuple[float, float, float, float], ...] = (
    (0.0, 0.0, 0.0, 3.0),
    (10.0, 50.0, 2.0, 2.5),
    (17.5, 20.0, 2.0, 2.5),  # slow down for the left turn
    (28.0, 45.0, 1.8, 2.5),
    (34.5, 0.0, 1.8, 2.5),  # red light behind a car
    (42.0, 30.0, 1.5, 2.0),
    (46.5, 0.0, 1.5, 2.0),  # stop and go
    (53.0, 25.0, 1.8, 2.0),  # right turn onto the on-ramp
    (62.5, 120.0, 2.5, 2.0),  # highway
    (101.0, 116.0, 1.0, 1.0),  # follow the lead car
    (111.9, 50.0, 1.0, 7.5),  # emergency braking, 0.9 s after the lead car
    (114.5, 100.0, 2.0, 2.0),
    (126.0, 50.0, 1.5, 1.8),  # exit
    (132.0, 22.0, 1.5, 2.0),  # slow down for the right turn
    (146.0, 45.0, 1.8, 2.0),
    (154.0, 0.0, 1.8, 2.2),
    (162.5, 12.0, 1.0, 1.5),  # creep into the parking space
    (165.5, 0.0, 1.0, 1.5),
)
SPEED_GAIN = 1.0  # 1/s, how hard the driver corrects a speed error
ACCEL_LAG = 0.25  # s, powertrain and brake response (limits the jerk)

# City turns: (start s, end s, peak steering wheel angle deg, positive left).
TURNS: tuple[tuple[float, float, float], ...] = (
    (21.0, 28.0, 200.0),
    (57.0, 63.5, -180.0),
    (139.0, 146.0, -190.0),
)
# Indicators: (on s, off s, side) with side "left" or "right".
INDICATORS: tuple[tuple[float, float, str], ...] = (
    (18.0, 28.5, "left"),
    (55.0, 63.5, "right"),
    (136.0, 146.5, "right"),
)
INDICATOR_HALF_PERIOD = 1.0 / 3.0  # s: lamp on, lamp off -> 1.5 Hz
# Highway road curvature: (start s, end s, peak curvature 1/m, positive left).
ROAD_CURVES: tuple[tuple[float, float, float], ...] = (
    (74.0, 86.0, 1.0 / 850.0),
    (117.0, 125.0, -1.0 / 1000.0),
)
LANE_DRIFT = (93.0, 98.0, 0.9)  # start s, end s, peak lateral offset m (left): an unintended lane departure
LDW_THRESHOLD = 0.75  # m, offset at which the wheel touches the lane marking
TUNNEL = (80.0, 90.5)
LOW_BEAM_ON = 80.3  # in the tunnel the driver switches the low beam on and leaves it on (dusk outside)
HIGH_BEAM = (92.0, 99.5)  # dark empty highway; switched off when the lead car appears
DOOR_OPEN = ((2.0, 6.0), (174.0, 178.0))  # driver's door: getting in, getting out
BRAKE_HOLD = (7.5, 10.0)  # brake pressed while shifting out of P
GEAR_PLAN: tuple[tuple[float, int], ...] = ((0.0, GEAR_P), (9.0, GEAR_D), (171.0, GEAR_P))
CITY_LEAD = (30.0, 55.5)  # a car ahead in stop-and-go traffic
HIGHWAY_LEAD = (100.0, 124.0)  # a car ahead on the highway, changes lanes at the end
LEAD_START_GAP = 52.0  # m
LEAD_PLAN: tuple[tuple[float, float, float, float], ...] = (
    # speed plan of the highway lead car, same form as SPEED_PLAN
    (100.0, 116.0, 1.0, 1.0),
    (111.0, 50.0, 1.0, 8.0),  # brakes hard
    (114.0, 105.0, 2.5, 2.0),
)
FCW_REACTION_TICKS = 30  # the radar needs 0.3 s to confirm a hard braking lead vehicle
FCW_HOLD = 1.0  # s the warning stays on after the threat is gone
TARGET_TEMPERATURE = 21.5  # degC
CABIN_START = 27.0  # degC, the car stood in the sun
CABIN_TIME_CONSTANT = 60.0  # s


def bump(t: float, start: float, end: float) -> float:
    """A raised-cosine pulse: 0 outside [start, end], rising smoothly to 1 at the middle."""
    if t <= start or t >= end:
        return 0.0
    return 0.5 * (1.0 - math.cos(2.0 * math.pi * (t - start) / (end - start)))


def bump_second_derivative(t: float, start: float, end: float) -> float:
    """d²/dt² of :func:`bump`, used to turn a lateral drift into the curvature that causes it."""
    if t <= start or t >= end:
        return 0.0
    omega = 2.0 * math.pi / (end - start)
    return 0.5 * omega * omega * math.cos(omega * (t - start))


def in_window(t: float, window: tuple[float, float]) -> bool:
    """Whether ``t`` lies in the half-open window [start, end)."""
    return window[0] <= t < window[1]


def plan_at(plan: Sequence[tuple[float, float, float, float]], t: float) -> tuple[float, float, float]:
    """The (target m/s, max acceleration, max deceleration) of a speed plan at time ``t``."""
    current = plan[0]
    for entry in plan:
        if entry[0] <= t:
            current = entry
    return current[1] / 3.6, current[2], current[3]


def driving_resistance(v: float) -> float:
    """Aerodynamic drag plus rolling resistance in N at speed ``v`` (m/s)."""
    rolling = ROLLING_RESISTANCE * MASS * GRAVITY if v > 0.0 else 0.0
    return 0.5 * AIR_DENSITY * DRAG_AREA * v * v + rolling


def follow_speed(v: float, a: float, target: float, accel: float, decel: float) -> tuple[float, float]:
    """One tick of a driver tracking a target speed; returns the new (speed m/s, acceleration m/s²)."""
    demand = SPEED_GAIN * (target - v)
    if target == 0.0:
        demand -= 0.4  # without the bias an exponential approach would never quite reach standstill
    demand = max(-decel, min(accel, demand))
    a += (demand - a) * TICK / ACCEL_LAG
    v += a * TICK
    if v <= 0.02 and target == 0.0:
        return 0.0, 0.0
    return max(v, 0.0), a


@dataclass
class Drive:
    """State of the simulated vehicle and its surroundings; :meth:`step` advances it by one tick."""

    rng: random.Random
    t: float = 0.0
    v: float = 0.0  # m/s
    a: float = 0.0  # m/s^2
    curvature: float = 0.0  # 1/m, path curvature (positive left)
    road_curvature: float = 0.0  # 1/m, curvature of the lane ahead
    steering: float = 0.0  # deg at the steering wheel
    steering_rate: float = 0.0  # deg/s
    lane_offset: float = 0.0  # m, positive left
    lane_wander: float = 0.0  # m, the driver's small weaving inside the lane
    lead_gap: float = NO_LEAD_DISTANCE
    lead_v: float = 0.0
    lead_a: float = 0.0
    lead_seen: bool = False
    fcw_until: float = -1.0
    ldw: int = LDW_NONE
    soc: float = 72.4  # %
    pack_current: float = 0.0  # A
    pack_voltage: float = 0.0  # V
    cabin: float = CABIN_START
    ac_active: bool = True

    def __post_init__(self) -> None:
        self.lead_a_history: deque[float] = deque([0.0] * FCW_REACTION_TICKS, maxlen=FCW_REACTION_TICKS)

    def step(self, t: float) -> None:
        """Advance the simulation to time ``t`` (one tick after the previous call)."""
        self.t = t
        target, accel, decel = plan_at(SPEED_PLAN, t)
        self.v, self.a = follow_speed(self.v, self.a, target, accel, decel)
        self._steer(t)
        self._lead(t)
        self._battery()
        self._climate(t)

    def _steer(self, t: float) -> None:
        steering_turns = sum(peak * bump(t, start, end) for start, end, peak in TURNS)
        turn_curvature = math.tan(math.radians(steering_turns / STEERING_RATIO)) / WHEELBASE
        road = sum(peak * bump(t, start, end) for start, end, peak in ROAD_CURVES)
        drift = LANE_DRIFT[2] * bump(t, LANE_DRIFT[0], LANE_DRIFT[1])
        # The drift is a sideways motion, so the path curvature carries its second derivative / v².
        drift_curvature = (
            LANE_DRIFT[2] * bump_second_derivative(t, LANE_DRIFT[0], LANE_DRIFT[1]) / max(self.v, 1.0) ** 2
        )
        self.road_curvature = turn_curvature + road
        self.curvature = self.road_curvature + drift_curvature
        steering = math.degrees(math.atan(WHEELBASE * self.curvature)) * STEERING_RATIO
        self.steering_rate = (steering - self.steering) / TICK
        self.steering = steering
        # A slow random walk pulled back to the centre: nobody drives exactly on the lane centre line.
        self.lane_wander += -0.02 * self.lane_wander + self.rng.gauss(0.0, 0.004) if self.v > 1.0 else 0.0
        self.lane_offset = drift + self.lane_wander
        drifting = in_window(t, LANE_DRIFT[:2])
        if drifting and self.lane_offset > LDW_THRESHOLD:
            self.ldw = LDW_LEFT
        elif drifting and self.lane_offset < -LDW_THRESHOLD:
            self.ldw = LDW_RIGHT
        else:
            self.ldw = LDW_NONE

    def _lead(self, t: float) -> None:
        if in_window(t, HIGHWAY_LEAD):
            if not self.lead_seen:
                self.lead_seen = True
                self.lead_gap = LEAD_START_GAP
                self.lead_v = 116.0 / 3.6
            target, accel, decel = plan_at(LEAD_PLAN, t)
            previous = self.lead_v
            self.lead_v, _ = follow_speed(self.lead_v, self.lead_a, target, accel, decel)
            self.lead_a = (self.lead_v - previous) / TICK
            self.lead_gap += (self.lead_v - self.v) * TICK
            if self.lead_gap <= 5.0:
                raise AssertionError(f"the scenario crashes into the lead car at t={t:.2f} s")
        elif in_window(t, CITY_LEAD):
            # Stop-and-go queue: the car ahead keeps a speed-dependent gap, so its relative speed is the
            # derivative of that gap.
            gap = 4.0 + 1.4 * self.v
            self.lead_v = self.v + 1.4 * self.a
            self.lead_a = 0.0
            self.lead_gap = gap
        else:
            self.lead_seen = False
            self.lead_gap = NO_LEAD_DISTANCE
            self.lead_v = self.v
            self.lead_a = 0.0
        confirmed_lead_a = self.lead_a_history[0]  # what the radar saw FCW_REACTION_TICKS ago
        self.lead_a_history.append(self.lead_a)
        closing = self.v - self.lead_v
        if self.lead_gap < 100.0 and self.v > 5.0:
            required = closing * closing / (2.0 * max(self.lead_gap - 3.0, 0.5)) if closing > 0 else 0.0
            if confirmed_lead_a < -5.0 or required > 2.5:
                self.fcw_until = t + FCW_HOLD

    def _battery(self) -> None:
        wheel_power = (MASS * self.a + driving_resistance(self.v)) * self.v
        # Driving loses 10 % in the drivetrain; regeneration recovers 70 % of the braking power up to its
        # limit, and the friction brakes take the rest.
        electric = wheel_power / 0.9 if wheel_power >= 0 else max(wheel_power * 0.7, -MAX_REGEN_POWER_W)
        electric += AUX_POWER_W + (AC_POWER_W if self.ac_active else 0.0)
        open_circuit = 330.0 + 0.9 * self.soc
        self.pack_current = electric / open_circuit
        self.pack_voltage = open_circuit - PACK_RESISTANCE * self.pack_current
        self.soc -= electric * TICK / 3600.0 / BATTERY_CAPACITY_WH * 100.0

    def _climate(self, t: float) -> None:
        self.cabin += (TARGET_TEMPERATURE - self.cabin) * TICK / CABIN_TIME_CONSTANT
        # Compressor hysteresis so that it does not toggle on sensor noise.
        if self.cabin > TARGET_TEMPERATURE + 0.6:
            self.ac_active = True
        elif self.cabin < TARGET_TEMPERATURE + 0.2:
            self.ac_active = False

    def outside_temperature(self) -> float:
        """Slowly cooling dusk air, a little warmer in the tunnel."""
        t = self.t
        base = 16.3 - 1.2 * t / 180.0 + 0.5 * math.sin(2.0 * math.pi * t / 130.0)
        return base + 1.5 * bump(t, TUNNEL[0], TUNNEL[1] + 6.0)

    def brake_pressure(self) -> float:
        """Master cylinder pressure in bar; the brake blends in beyond what regeneration can do."""
        if self.v == 0.0 and (in_window(self.t, BRAKE_HOLD) or self.gear() != GEAR_P):
            return 18.0  # holding the car at standstill
        if self.a < -1.0:
            return 5.0 + 13.0 * (-self.a - 0.5)
        return 0.0

    def accelerator(self) -> float:
        """Accelerator pedal travel in % for the current traction demand."""
        if self.v == 0.0 or self.a < -0.3:
            return 0.0  # standing, or the driver lifted off to slow down
        force = MASS * self.a + driving_resistance(self.v)
        if force <= 0.0:
            return 0.0
        return 70.0 * force / 9000.0 + 40.0 * force * self.v / 150_000.0

    def gear(self) -> int:
        """The drive selector position."""
        current = GEAR_P
        for start, gear in GEAR_PLAN:
            if start <= self.t:
                current = gear
        return current

    def indicator(self, side: str) -> bool:
        """Whether the lamp of the indicator on ``side`` is lit now (blinking while the stalk is set)."""
        for start, end, which in INDICATORS:
            if which == side and start <= self.t < end:
                return int((self.t - start) / INDICATOR_HALF_PERIOD) % 2 == 0
        return False

    def fcw(self) -> bool:
        """Whether the forward collision warning is active."""
        return self.t < self.fcw_until


def noisy(rng: random.Random, value: float, sigma: float) -> float:
    """``value`` plus Gaussian sensor noise."""
    return value + rng.gauss(0.0, sigma)


def signal_values(drive: Drive, rng: random.Random, climate_page: int) -> dict[str, dict[str, Any]]:
    """The physical signal values of every cyclic message at the drive's current time."""
    v_kmh = drive.v * 3.6
    moving = drive.v > 0.0
    # Kinematic single-track model: inner wheels run slower, front wheels on a larger radius than the rear.
    half_track = drive.curvature * TRACK / 2.0
    front = 1.0 / math.cos(math.atan(WHEELBASE * drive.curvature))
    slip = 1.0 - 0.02 * max(0.0, -drive.a - 4.0) / 3.0  # the ABS lets the wheels slip a little when braking
    wheel_sigma = 0.03 if moving else 0.0  # wheel speed sensors read exactly 0 at standstill

    def wheel(side: float, axle: float) -> float:
        return noisy(rng, v_kmh * slip * axle * (1.0 + side * half_track), wheel_sigma)

    yaw_rate = math.degrees(drive.v * drive.curvature)
    lateral = drive.v * drive.v * drive.curvature
    lead = drive.lead_gap < NO_LEAD_DISTANCE
    t = drive.t
    if climate_page == 0:
        climate: dict[str, Any] = {
            "Page": 0,
            "CabinTemperature": noisy(rng, drive.cabin, 0.1),
            "TargetTemperature": TARGET_TEMPERATURE,
        }
    else:
        fan = 2.0 + 1.2 * (drive.cabin - TARGET_TEMPERATURE)
        climate = {
            "Page": 1,
            "FanLevel": max(1, min(7, round(fan))),
            "AcActive": int(drive.ac_active),
            "Recirculation": int(in_window(t, (TUNNEL[0], TUNNEL[1] + 1.0))),
        }
    return {
        "WheelSpeeds": {
            "WheelSpeedFL": wheel(-1.0, front),
            "WheelSpeedFR": wheel(1.0, front),
            "WheelSpeedRL": wheel(-1.0, 1.0),
            "WheelSpeedRR": wheel(1.0, 1.0),
        },
        "VehicleDynamics": {
            "VehicleSpeed": noisy(rng, v_kmh, 0.02) if moving else 0.0,
            "YawRate": noisy(rng, yaw_rate, 0.05),
            "LateralAcceleration": noisy(rng, lateral, 0.03),
            "LongitudinalAcceleration": noisy(rng, drive.a, 0.03),
        },
        "Steering": {
            "SteeringAngle": noisy(rng, drive.steering, 0.1),
            "SteeringRate": noisy(rng, drive.steering_rate, 0.4),
        },
        "Pedals": {
            "AcceleratorPedalPosition": drive.accelerator(),
            "BrakePedalPressed": int(drive.brake_pressure() > 0.0),
            "BrakePressure": noisy(rng, drive.brake_pressure(), 0.2) if drive.brake_pressure() > 0 else 0.0,
        },
        "Gear": {"GearPosition": drive.gear()},
        "DriverAssist": {
            "LeadVehicleDistance": noisy(rng, drive.lead_gap, 0.05) if lead else NO_LEAD_DISTANCE,
            "LeadVehicleRelativeSpeed": noisy(rng, drive.lead_v - drive.v, 0.03) if lead else 0.0,
            "LaneDepartureWarning": drive.ldw,
            "ForwardCollisionWarning": int(drive.fcw()),
            "LaneOffset": noisy(rng, drive.lane_offset, 0.005),
            "LaneCurvature": noisy(rng, drive.road_curvature, 0.00002),
        },
        "BodyStatus": {
            "TurnIndicatorLeft": int(drive.indicator("left")),
            "TurnIndicatorRight": int(drive.indicator("right")),
            "DoorFrontLeftOpen": int(any(in_window(t, window) for window in DOOR_OPEN)),
            "DoorFrontRightOpen": 0,
            "DoorRearLeftOpen": 0,
            "DoorRearRightOpen": 0,
            "TrunkOpen": 0,
            "LowBeamOn": int(t >= LOW_BEAM_ON),
            "HighBeamOn": int(in_window(t, HIGH_BEAM)),
            "OutsideTemperature": drive.outside_temperature(),
        },
        "ClimateStatus": climate,
        "BatteryStatus": {
            "StateOfCharge": drive.soc,
            "RemainingRange": round(drive.soc / 100.0 * BATTERY_CAPACITY_WH / CONSUMPTION_WH_PER_KM),
            "PackVoltage": noisy(rng, drive.pack_voltage, 0.05),
            "PackCurrent": noisy(rng, drive.pack_current, 0.1),
        },
    }


class FrameEncoder:
    """Encodes messages of the example vehicle, with alive counters and E2E checksums."""

    def __init__(self, db: cantools.database.can.Database) -> None:
        self._db = db
        self._counters: dict[str, int] = {}

    def _clamp(self, name: str, values: dict[str, Any]) -> dict[str, Any]:
        # Noise must never push a value out of the DBC range: strict encoding would reject the frame.
        message = self._db.get_message_by_name(name)
        clamped = dict(values)
        for key, value in values.items():
            signal = message.get_signal_by_name(key)
            low = signal.minimum if signal.minimum is not None else value
            high = signal.maximum if signal.maximum is not None else value
            clamped[key] = min(high, max(low, value))
        return clamped

    def encode(self, name: str, values: dict[str, Any]) -> tuple[int, bool, bool, bytes]:
        """Encode one frame of ``name``; returns (frame id, extended, FD, payload)."""
        message = self._db.get_message_by_name(name)
        values = self._clamp(name, values)
        profile = E2E_PROFILES.get(name)
        if profile is not None:
            counter = self._counters.get(name, 0)
            self._counters[name] = (counter + 1) % 16
            values["Counter"] = counter
            values["Checksum"] = 0
        payload = bytearray(message.encode(values, strict=True))
        if profile is not None:
            algorithm, data_id = profile
            checksum_signal = message.get_signal_by_name("Checksum")
            index = checksum_signal.start // 8
            if checksum_signal.length != 8 or checksum_signal.start % 8 != (
                7 if checksum_signal.byte_order == "big_endian" else 0
            ):
                raise ValueError(f"{name}: the checksum must occupy one whole byte")
            payload[index] = e2e.compute_checksum(
                e2e.checksum_function(algorithm), bytes(payload), frozenset({index}), data_id, 8
            )
        return message.frame_id, message.is_extended_frame, message.is_fd, bytes(payload)


def candump_line(micros: int, frame_id: int, extended: bool, fd: bool, payload: bytes) -> str:
    """One line of a ``candump -L`` log for a frame ``micros`` µs after :data:`EPOCH`.

    The timestamp is formatted from integers, so no float rounding can make two runs differ. The line has the
    plain candump form (no direction suffix) that can-utils and every python-can version read; CAN FD frames
    are marked ``##`` with the bit rate switch flag set.
    """
    seconds, fraction = divmod(micros, 1_000_000)
    ident = f"{frame_id:08X}" if extended else f"{frame_id:03X}"
    separator = "##1" if fd else "#"
    return f"({EPOCH + seconds}.{fraction:06d}) {CHANNEL} {ident}{separator}{payload.hex().upper()}\n"


def generate(output: Path, duration: float = DEFAULT_DURATION, dbc: Path = DEFAULT_DBC) -> int:
    """Simulate ``duration`` seconds of the demo drive into ``output``; returns the number of frames."""
    db = cantools.database.load_file(str(dbc), strict=True)
    if not isinstance(db, cantools.database.can.Database):
        raise TypeError(f"{dbc} is not a CAN database")
    rng = random.Random(SEED)
    jitter = random.Random(SEED + 1)  # a separate stream, so jitter never shifts the signal noise
    drive = Drive(rng)
    encoder = FrameEncoder(db)
    ticks = round(duration * 1000) // TICK_MS
    climate_page = 0
    frames = 0
    output.parent.mkdir(parents=True, exist_ok=True)
    with (
        output.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as compressed,
        io.TextIOWrapper(compressed, encoding="ascii", newline="\n") as text,
    ):
        for tick in range(ticks):
            drive.step(tick * TICK)
            values = signal_values(drive, rng, climate_page)
            elapsed_ms = tick * TICK_MS
            for name, cycle_ms, offset_us in SCHEDULE:
                if elapsed_ms % cycle_ms:
                    continue
                frame_id, extended, fd, payload = encoder.encode(name, values[name])
                if name == "ClimateStatus":
                    climate_page ^= 1  # the pages alternate frame by frame
                micros = elapsed_ms * 1000 + offset_us + jitter.randint(-JITTER_US, JITTER_US)
                text.write(candump_line(micros, frame_id, extended, fd, payload))
                frames += 1
    return frames


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="gzip candump log to write")
    parser.add_argument("--duration", type=float, default=DEFAULT_DURATION, help="seconds to simulate")
    parser.add_argument("--dbc", type=Path, default=DEFAULT_DBC, help="database of the example vehicle")
    args = parser.parse_args(argv)
    if args.duration <= 0:
        parser.error("--duration must be positive")
    frames = generate(args.output, args.duration, args.dbc)
    print(f"{args.output}: {frames} frames, {args.duration:g} s, {args.output.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
