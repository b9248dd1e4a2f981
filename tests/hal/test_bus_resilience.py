"""Bus resilience: a bus that fails is retried with backoff while the other buses keep running.

The failing bus is a real python-can bus (:class:`~tests.hal.flaky_bus.FlakyBus`) that raises while unplugged;
the HAL reopens it through an opener, as it reopens a profile's interface.
"""

from __future__ import annotations

import gzip
import logging
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import can
import pytest
import yaml

from sdv.broker import HalBridge
from sdv.broker.access import UNRESTRICTED
from sdv.errors import BusError, HalError, ProfileError
from sdv.hal.bus_state import BusState, BusStateMachine
from sdv.hal.config import BusReopenPolicy, HalConfig
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import VehicleDefinition, load_vehicle
from sdv.resources import demo_profile, demo_recording
from sdv.types.status import Status

from .conftest import build_frame
from .flaky_bus import FAST_RECONNECT, FlakyBus, Plug, flaky_opener, two_bus_vehicle, wait_for

LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
WHEEL = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed"
FRAME_LINE = "(1.0) vehicle 0F0#0000000000000000\n"


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    wait_for(lambda: not set(threading.enumerate()) - before, "every thread the test started has ended", 5)


@pytest.fixture
def vehicle(tmp_path: Path) -> VehicleDefinition:
    return two_bus_vehicle(tmp_path)


@pytest.fixture
def senders(vehicle: VehicleDefinition) -> Iterator[dict[str, can.BusABC]]:
    buses = {
        name: can.Bus(interface="virtual", channel=str(bus.config.channel))
        for name, bus in vehicle.buses.items()
    }
    yield buses
    for bus in buses.values():
        bus.shutdown()


def _body(vehicle: VehicleDefinition, low_beam: int) -> can.Message:
    return build_frame(vehicle, "BodyStatus", {"LowBeamOn": low_beam, "OutsideTemperature": 20.0})


def _wheels(vehicle: VehicleDefinition, speed: float) -> can.Message:
    return build_frame(vehicle, "WheelSpeeds", {"WheelSpeedFL": speed}, bus="chassis")


def test_unplugged_bus_is_retried_with_backoff_and_recovers(
    vehicle: VehicleDefinition, senders: dict[str, can.BusABC]
) -> None:
    plug = Plug()
    hal = Hal(vehicle, openers={"vehicle": flaky_opener(vehicle, plug)}, config=FAST_RECONNECT)
    bridge = HalBridge(hal, statistics_period=0.0)
    broker = bridge.broker
    bridge.start()
    try:
        senders["vehicle"].send(_body(vehicle, 1))
        senders["chassis"].send(_wheels(vehicle, 10.0))
        wait_for(
            lambda: broker.get(LOW_BEAM, access=UNRESTRICTED).value is True,
            "the low beam from the vehicle bus",
        )
        wait_for(
            lambda: broker.get(WHEEL, access=UNRESTRICTED).value == pytest.approx(10.0),
            "a wheel speed from the chassis bus",
        )
        assert broker.get("Sdv.Hal.Bus.vehicle.State", access=UNRESTRICTED).value == "UP"

        plug.pull()
        wait_for(lambda: hal.bus_states()["vehicle"].attempts >= 4, "four failed attempts to reopen")
        assert broker.get(LOW_BEAM, access=UNRESTRICTED) == (
            None,
            broker.get(LOW_BEAM, access=UNRESTRICTED).timestamp,
            Status.NOT_AVAILABLE,
        )
        assert (
            broker.get("Vehicle.Exterior.AirTemperature", access=UNRESTRICTED).status is Status.NOT_AVAILABLE
        )
        down = hal.bus_states()["vehicle"]
        assert down.state is BusState.DOWN
        assert "device unplugged" in (down.error or "") or "no device" in (down.error or "")
        # The backoff grows by the factor up to its maximum (no jitter in this policy).
        assert list(down.retry_delays[:5]) == pytest.approx(
            [0.01, 0.02, 0.04, 0.08, 0.08][: len(down.retry_delays)]
        )
        assert broker.get("Sdv.Hal.Bus.vehicle.State", access=UNRESTRICTED).value == "DOWN"
        assert "no device" in str(broker.get("Sdv.Hal.Bus.vehicle.LastError", access=UNRESTRICTED).value)
        assert broker.get("Sdv.Hal.Bus.vehicle.NextRetry", access=UNRESTRICTED).status is Status.VALID
        with pytest.raises(BusError, match=r"Low.IsOn: bus vehicle is DOWN: .*retrying in"):
            hal.write(LOW_BEAM, True)
        # The other bus is unaffected: new values keep arriving.
        senders["chassis"].send(_wheels(vehicle, 55.5))
        wait_for(
            lambda: broker.get(WHEEL, access=UNRESTRICTED).value == pytest.approx(55.5),
            "a new wheel speed while the other is down",
        )
        assert broker.get(WHEEL, access=UNRESTRICTED).status is Status.VALID
        assert hal.bus_states()["chassis"].state is BusState.UP

        plug.insert()
        wait_for(lambda: hal.bus_states()["vehicle"].state is BusState.UP, "the vehicle bus back up")
        senders["vehicle"].send(_body(vehicle, 1))  # the same value as before the outage is published again
        wait_for(
            lambda: broker.get(LOW_BEAM, access=UNRESTRICTED).status is Status.VALID,
            "the low beam valid again",
        )
        assert broker.get(LOW_BEAM, access=UNRESTRICTED).value is True
        up = hal.bus_states()["vehicle"]
        assert up.reconnects == 1 and up.retry_delays == () and up.attempts == 0
        assert broker.get("Sdv.Hal.Bus.vehicle.State", access=UNRESTRICTED).value == "UP"
        assert broker.get("Sdv.Hal.Bus.vehicle.Reconnects", access=UNRESTRICTED).value == 1
        assert broker.get("Sdv.Hal.Bus.vehicle.NextRetry", access=UNRESTRICTED).status is Status.NOT_AVAILABLE
        assert hal.bus_states()["chassis"].reconnects == 0
        hal.write(LOW_BEAM, False)  # actuation works again
    finally:
        bridge.stop()
    assert plug.opened == 2  # once at start, once after the outage


def test_an_outage_is_one_warning_and_one_info_whatever_the_retries(
    vehicle: VehicleDefinition, caplog: pytest.LogCaptureFixture
) -> None:
    plug = Plug()
    hal = Hal(vehicle, openers={"vehicle": flaky_opener(vehicle, plug)}, config=FAST_RECONNECT)
    caplog.set_level(logging.DEBUG, logger="sdv.hal.runtime")
    hal.start(lambda updates: None)
    try:
        for outage in range(2):
            plug.pull()
            wait_for(lambda: hal.bus_states()["vehicle"].attempts >= 3, "retries")
            plug.insert()
            wait_for(lambda n=outage + 1: hal.bus_states()["vehicle"].reconnects == n, "the bus back up")
    finally:
        hal.stop()
    records = [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if "bus vehicle" in record.getMessage()
    ]
    above_debug = [entry for entry in records if entry[0] > logging.DEBUG]
    # The second outage falls within log_interval_s of the first: it is logged at DEBUG only.
    assert [level for level, _ in above_debug] == [logging.WARNING, logging.INFO], above_debug
    assert "is DOWN: " in above_debug[0][1] and "signals are not available" in above_debug[0][1]
    assert above_debug[1][1] == "bus vehicle is up again (1 reconnects)"
    assert sum(1 for level, message in records if level == logging.DEBUG and "still DOWN" in message) >= 6


def test_a_given_source_that_fails_is_reopened_through_the_opener(
    vehicle: VehicleDefinition, senders: dict[str, can.BusABC]
) -> None:
    plug = Plug()
    opener = flaky_opener(vehicle, plug)
    given = opener()
    hal = Hal(vehicle, sources={"vehicle": given}, openers={"vehicle": opener}, config=FAST_RECONNECT)
    hal.start(lambda updates: None)
    try:
        assert hal.sources["vehicle"] is given
        plug.pull()
        wait_for(lambda: hal.bus_states()["vehicle"].state is BusState.DOWN, "the given bus down")
        assert isinstance(given.bus, FlakyBus) and given.bus.closed  # closed by the HAL
        plug.insert()
        wait_for(lambda: hal.bus_states()["vehicle"].state is BusState.UP, "the bus reopened")
        assert hal.sources["vehicle"] is not given
    finally:
        hal.stop()
    assert plug.opened == 2


def test_bus_down_at_start_does_not_stop_the_others(
    vehicle: VehicleDefinition, senders: dict[str, can.BusABC]
) -> None:
    plug = Plug()
    plug.pull()
    hal = Hal(vehicle, openers={"vehicle": flaky_opener(vehicle, plug)}, config=FAST_RECONNECT)
    bridge = HalBridge(hal, statistics_period=0.0)
    bridge.start()  # does not raise: the vehicle bus starts down
    try:
        assert hal.bus_states()["vehicle"].state is BusState.DOWN
        assert bridge.broker.get("Sdv.Hal.Bus.vehicle.State", access=UNRESTRICTED).value == "DOWN"
        senders["chassis"].send(_wheels(vehicle, 30.0))
        wait_for(
            lambda: bridge.broker.get(WHEEL, access=UNRESTRICTED).value == pytest.approx(30.0),
            "the chassis bus delivering",
        )
        plug.insert()
        wait_for(lambda: hal.bus_states()["vehicle"].state is BusState.UP, "the vehicle bus up")
        senders["vehicle"].send(_body(vehicle, 1))
        wait_for(
            lambda: bridge.broker.get(LOW_BEAM, access=UNRESTRICTED).value is True, "values from the late bus"
        )
        assert hal.bus_states()["vehicle"].reconnects == 1
    finally:
        bridge.stop()


def _recording_vehicle(tmp_path: Path, recording: Path, interface: str | None = None) -> VehicleDefinition:
    data = yaml.safe_load(demo_profile().read_text())
    bus = data["buses"][0]
    bus["dbc"] = [str(demo_profile().parent / bus["dbc"][0])]
    if interface is not None:
        bus.pop("recording")
        bus.update(interface=interface, channel="x")
    else:
        bus["recording"] = {"file": str(recording), "realtime": False, "loop": False}
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_vehicle(path)


def test_missing_recording_fails_a_replay_but_is_retried_by_a_running_hal(tmp_path: Path) -> None:
    recording = tmp_path / "later.log"
    with pytest.raises(ProfileError, match="no such recording"):  # a typo in the profile: refused at load
        _recording_vehicle(tmp_path, recording)
    recording.write_text(FRAME_LINE)
    vehicle = _recording_vehicle(tmp_path, recording)
    recording.unlink()  # gone after the profile was loaded (a removed medium, a rotated file)
    with pytest.raises(BusError, match=r"later\.log not found"):
        list(Hal(vehicle).replay())
    hal = Hal(vehicle, config=FAST_RECONNECT)
    hal.start(lambda updates: None)
    try:
        wait_for(lambda: hal.bus_states()["vehicle"].attempts >= 2, "attempts to open the recording")
        assert "later.log not found" in (hal.bus_states()["vehicle"].error or "")
        recording.write_text(FRAME_LINE)
        wait_for(lambda: hal.bus_states()["vehicle"].state is BusState.ENDED, "the recording played once")
        assert hal.bus_states()["vehicle"].reconnects == 1
    finally:
        hal.stop()


def test_recording_corrupt_midway_is_a_bus_failure(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.log.gz"
    truncated.write_bytes(demo_recording().read_bytes()[:20_000])  # a gzip stream that ends too early
    with gzip.open(truncated, "rt") as file, pytest.raises(EOFError):
        file.read()
    vehicle = _recording_vehicle(tmp_path, truncated)
    slow = HalConfig(reconnect=BusReopenPolicy(initial_delay_s=30, max_delay_s=60))
    decoded: list[int] = []
    hal = Hal(vehicle, config=slow)
    hal.start(lambda updates: decoded.append(len(updates)))
    try:
        wait_for(lambda: hal.bus_states()["vehicle"].state is BusState.DOWN, "the bus down at the corruption")
        status = hal.bus_states()["vehicle"]
        assert f"recording {truncated}: line " in (status.error or "")  # where the stream ends
        assert hal.statistics()["vehicle"].decoded > 0  # the frames before the corruption were decoded
        assert status.retry_delay is not None and 27 <= status.retry_delay <= 33
    finally:
        hal.stop()


def test_configuration_that_can_never_work_fails_the_start(tmp_path: Path) -> None:
    vehicle = _recording_vehicle(tmp_path, tmp_path / "unused.log", interface="no_such_interface")
    hal = Hal(vehicle, config=FAST_RECONNECT)
    with pytest.raises(HalError, match="no_such_interface") as raised:
        hal.start(lambda updates: None)
    assert not isinstance(raised.value, BusError)
    hal.stop()


def test_backoff_grows_to_its_maximum_with_bounded_jitter() -> None:
    policy = BusReopenPolicy(initial_delay_s=1, factor=3, max_delay_s=20, jitter=0.25)
    rng = random.Random(7)
    for attempt, base in enumerate([1, 3, 9, 20, 20, 20]):
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert min(delays) >= base * 0.75 and max(delays) <= base * 1.25
        assert max(delays) - min(delays) > base * 0.25  # the jitter spreads them
    assert BusReopenPolicy(jitter=0).delay(10_000, rng) == 30.0  # no overflow for a bus down for days
    with pytest.raises(ValueError, match="max_delay_s"):
        BusReopenPolicy(initial_delay_s=5, max_delay_s=1)


def test_state_machine_counts_reconnects_and_restarts_the_backoff_after_frames() -> None:
    machine = BusStateMachine(BusReopenPolicy(initial_delay_s=1, jitter=0), now=0.0)
    assert machine.status().state is BusState.CONNECTING
    assert machine.opened(1.0).reconnects == 0
    status = machine.failed("gone", 2.0)
    assert (status.state, status.retry_delay, status.next_retry, status.since) == (BusState.DOWN, 1, 3.0, 2.0)
    assert machine.failed("still gone", 3.0).retry_delays == (1, 2)
    assert machine.status().describe(4.0) == "DOWN: still gone, retrying in 1.0 s"
    status = machine.opened(5.0)
    assert (status.state, status.reconnects, status.error) == (BusState.UP, 1, "still gone")
    # Opened but failed before any frame: the backoff keeps growing.
    assert machine.failed("flapping", 6.0).retry_delay == 4
    machine.opened(10.0)
    machine.delivered()
    assert machine.failed("again", 11.0).retry_delay == 1
    assert machine.ended(12.0).describe(12.0) == "ENDED"


def test_a_replay_ends_its_buses(tmp_path: Path) -> None:
    recording = tmp_path / "short.log"
    recording.write_text(FRAME_LINE * 3)
    hal = Hal(_recording_vehicle(tmp_path, recording))
    batches = list(hal.replay())
    hal.close()
    assert len(batches) == 2  # the attributes, then the one batch of three frames
    assert hal.statistics()["vehicle"].frames == 3
    status = hal.bus_states()["vehicle"]
    assert (status.state, status.reconnects, status.error) == (BusState.ENDED, 0, None)
