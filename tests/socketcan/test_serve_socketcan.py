"""``sdv serve`` on the kernel's SocketCAN: two virtual buses, frames from can-utils and python-can processes.

One server process serves a two-bus profile for the whole module: ``body`` on ``vcan0`` (CAN FD) and ``chassis``
on ``vcan1`` (classic CAN), with a ``cangw`` rule routing the speed frame from ``vcan0`` to ``vcan1``. Values are
read with the project's client (and once with ``kuksa-client``); frames are observed with ``candump``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import can
import pytest

from sdv.client import VehicleClient
from sdv.types.signals import Datapoint
from sdv.types.status import Status
from tests.serve_process import serving

pytestmark = pytest.mark.socketcan

SPEED = "Vehicle.Speed"
ROUTED_SPEED = "Vehicle.SDV.Chassis.Speed"
DISTANCE = "Vehicle.ADAS.LeadDistance"
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
BODY_FRAMES = "Sdv.Hal.Bus.body.Frames"
BODY_STATE = "Sdv.Hal.Bus.body.State"
BODY_UNKNOWN_IDS = "Sdv.Hal.Bus.body.Errors.UnknownId"
BODY_RECONNECTS = "Sdv.Hal.Bus.body.Reconnects"
BODY_NEXT_RETRY = "Sdv.Hal.Bus.body.NextRetry"
KUKSA = Path(__file__).with_name("kuksa_socketcan.py")
WAIT = 120.0
"""Seconds any one expected change may take: generous, the guest may emulate its CPU."""

SPEED_DBC = """VERSION ""

NS_ :

BS_:

BU_: ECU CCU

BO_ 256 Speed: 8 ECU
 SG_ VehicleSpeed : 0|16@1+ (0.01,0) [0|300] "km/h" CCU
"""
"""A DBC with the speed message (0x100) the SocketCAN tests send."""
DBC = (
    SPEED_DBC
    + """
BO_ 512 Radar: 64 ECU
 SG_ LeadDistance : 0|16@1+ (0.01,0) [0|250] "m" CCU

BO_ 768 LightRequest: 1 CCU
 SG_ LowBeamRequest : 0|1@1+ (1,0) [0|1] "" ECU

BO_ 769 LightStatus: 1 ECU
 SG_ LowBeamOn : 0|1@1+ (1,0) [0|1] "" CCU
"""
)

PROFILE = """name: socketcan-test
buses:
  - {name: body, interface: socketcan, channel: vcan0, fd: true, dbc: [body.dbc]}
  - {name: chassis, interface: socketcan, channel: vcan1, dbc: [chassis.dbc]}
signals:
  - {path: Vehicle.Speed, kind: sensor, datatype: float, source: {bus: body, message: Speed, signal: VehicleSpeed}}
  - {path: Vehicle.ADAS.LeadDistance, kind: sensor, datatype: float,
     source: {bus: body, message: Radar, signal: LeadDistance}}
  - {path: Vehicle.SDV.Chassis.Speed, kind: sensor, datatype: float,
     source: {bus: chassis, message: Speed, signal: VehicleSpeed}}
  - path: Vehicle.Body.Lights.Beam.Low.IsOn
    kind: actuator
    datatype: boolean
    source: {bus: body, message: LightStatus, signal: LowBeamOn}
    actuator: {message: LightRequest, signal: LowBeamRequest}
"""


def sh(*command: str) -> str:
    """Run a command (can-utils, iproute2), failing the test with its error output when it fails."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=WAIT, check=False)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    directory = tmp_path_factory.mktemp("socketcan")
    (directory / "body.dbc").write_text(DBC)
    (directory / "chassis.dbc").write_text(DBC)
    profile = directory / "vehicle.yaml"
    profile.write_text(PROFILE)
    sh("cangw", "-A", "-s", "vcan0", "-d", "vcan1", "-e", "-f", "100:7FF")  # -e: vcan echoes nothing itself
    try:
        with serving("--profile", str(profile)) as (served, _):
            asyncio.run(until(served, BODY_STATE, lambda point: point.value == "UP"))
            yield served
    finally:
        sh("cangw", "-F")


async def _until(
    port: int, path: str, wanted: Callable[[Datapoint], bool], action: Callable[[], object]
) -> Datapoint:
    async with VehicleClient(f"127.0.0.1:{port}", timeout=WAIT) as client:
        acted = False
        async for batch in client.subscribe([path]):
            point = batch.get(path)
            if point is not None and wanted(point):
                return point
            if not acted:  # the subscription is established: what the action changes is seen
                acted = True
                await asyncio.to_thread(action)
    raise AssertionError(f"the subscription to {path} ended")


async def until(
    port: int, path: str, wanted: Callable[[Datapoint], bool], action: Callable[[], object] = lambda: None
) -> Datapoint:
    """Subscribe to ``path``, run ``action``, and return the first datapoint ``wanted`` accepts."""
    try:
        return await asyncio.wait_for(_until(port, path, wanted, action), WAIT)
    except TimeoutError:
        raise AssertionError(f"{path}: the expected value did not come within {WAIT:.0f} s") from None


def valid(value: object) -> Callable[[Datapoint], bool]:
    return lambda point: point.status is Status.VALID and point.value == pytest.approx(value)


def speed_frame(speed: float) -> str:
    """The cansend frame of the speed message for ``speed`` km/h."""
    return f"100#{round(speed * 100).to_bytes(2, 'little').hex()}000000000000"


def test_a_frame_sent_with_cansend_is_served_decoded(port: int) -> None:
    point = asyncio.run(until(port, SPEED, valid(12.34), lambda: sh("cansend", "vcan0", speed_frame(12.34))))
    assert point.timestamp is not None and abs(point.timestamp - time.time()) < WAIT


def test_can_fd_frames_from_cansend_and_a_python_can_process_are_served(port: int) -> None:
    assert Path("/sys/class/net/vcan0/mtu").read_text().strip() == "72"  # CAN FD capable
    fd_frame = "200##0" + ((10000).to_bytes(2, "little") + bytes(62)).hex()  # ##, flags digit, 64 bytes
    asyncio.run(until(port, DISTANCE, valid(100.0), lambda: sh("cansend", "vcan0", fd_frame)))
    payload = (25000).to_bytes(2, "little") + bytes(62)  # 64 bytes: only CAN FD carries them
    sender = (
        "import can, sys\n"
        "with can.Bus(channel='vcan0', interface='socketcan', fd=True) as bus:\n"
        f"    bus.send(can.Message(arbitration_id=0x200, data=bytes.fromhex({payload.hex()!r}), is_fd=True,\n"
        "                         is_extended_id=False))\n"
    )
    send = lambda: subprocess.run([sys.executable, "-c", sender], check=True, timeout=WAIT)  # noqa: E731
    asyncio.run(until(port, DISTANCE, valid(250.0), send))


def test_cangw_routes_a_frame_to_the_second_bus(port: int) -> None:
    asyncio.run(until(port, ROUTED_SPEED, valid(77.7), lambda: sh("cansend", "vcan0", speed_frame(77.7))))
    assert asyncio.run(read(port, SPEED)).value == pytest.approx(77.7)


async def read(port: int, path: str) -> Datapoint:
    async with VehicleClient(f"127.0.0.1:{port}", timeout=WAIT) as client:
        return (await client.get([path]))[path]


def test_kuksa_client_reads_a_value_and_its_actuation_reaches_the_bus(port: int) -> None:
    asyncio.run(until(port, SPEED, valid(42.0), lambda: sh("cansend", "vcan0", speed_frame(42.0))))
    with listening_candump("vcan0") as frames:
        assert kuksa_reads_and_sets_low_beam(port, SPEED) == {SPEED: pytest.approx(42.0)}
        request = frames.first("300#")
    assert request.split()[1:] == ["vcan0", "300#01"]


def kuksa_reads_and_sets_low_beam(port: int, *paths: str) -> dict[str, object]:
    """The values of ``paths`` ``kuksa-client`` reads, before it sets the low beam's target to true (:data:`KUKSA`)."""
    done = subprocess.run(
        [sys.executable, str(KUKSA), "127.0.0.1", str(port), *paths],
        capture_output=True,
        text=True,
        timeout=WAIT * 2,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    values: dict[str, object] = json.loads(done.stdout)
    return values


class CandumpLines:
    """The lines a running ``candump -L`` prints, collected in a thread."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._arrived = threading.Event()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.strip())
            self._arrived.set()

    def wait(self, seconds: float) -> None:
        """Wait up to ``seconds`` for the next line."""
        self._arrived.wait(seconds)
        self._arrived.clear()

    def first(self, text: str) -> str:
        """The first line containing ``text``, waiting up to :data:`WAIT` for it."""
        deadline = time.monotonic() + WAIT
        while not any(text in line for line in self.lines):
            assert time.monotonic() < deadline, f"candump printed no {text}: {self.lines}"
            self.wait(0.5)
        return next(line for line in self.lines if text in line)


@contextlib.contextmanager
def listening_candump(interface: str) -> Iterator[CandumpLines]:
    """``candump`` of the light request (0x300) on ``interface``, yielded once it is known to be listening."""
    with subprocess.Popen(
        ["candump", "-L", f"{interface},300:7FF,7F0:7FF"], stdout=subprocess.PIPE, text=True
    ) as candump:
        try:
            assert candump.stdout is not None
            frames = CandumpLines(candump.stdout)
            # candump prints nothing until a frame passes its filter: a marker frame shows it is listening.
            deadline = time.monotonic() + WAIT
            while not any("7F0#" in line for line in frames.lines):
                assert time.monotonic() < deadline, "candump never saw the marker frame"
                sh("cansend", interface, "7F0#01")
                frames.wait(0.5)
            yield frames
        finally:
            candump.terminate()


def test_frames_of_unmapped_ids_never_reach_the_hal(port: int) -> None:
    before = asyncio.run(read(port, BODY_FRAMES)).value
    assert isinstance(before, int)
    sh("cangen", "vcan0", "-I", "123", "-L", "8", "-g", "0", "-n", "2000")  # an id no DBC of the bus declares
    speed = can.Message(
        arbitration_id=0x100, data=(321).to_bytes(2, "little") + bytes(6), is_extended_id=False
    )
    with can.Bus(channel="vcan0", interface="socketcan") as bus:
        cyclic = bus.send_periodic(speed, 0.05)  # as an ECU sends: the counters are published on frames
        try:
            asyncio.run(until(port, SPEED, valid(3.21)))  # the flood was queued before: it was read by now
            served = time.time()
            after = asyncio.run(until(port, BODY_FRAMES, lambda point: (point.timestamp or 0) > served))
            unknown = asyncio.run(read(port, BODY_UNKNOWN_IDS))
        finally:
            cyclic.stop()
    assert unknown.value == 0
    assert isinstance(after.value, int) and after.value - before < 2000  # the cyclic frames, never the flood


def test_the_signal_time_is_the_kernel_receive_time(port: int) -> None:
    with can.Bus(
        channel="vcan0", interface="socketcan", can_filters=[{"can_id": 0x100, "can_mask": 0x7FF}]
    ) as bus:
        point = asyncio.run(
            until(port, SPEED, valid(55.5), lambda: sh("cansend", "vcan0", speed_frame(55.5)))
        )
        frame = bus.recv(WAIT)
    assert frame is not None and frame.data[:2] == (5550).to_bytes(2, "little")
    assert point.timestamp == pytest.approx(frame.timestamp, abs=1e-6)


def take_vcan0_down(port: int) -> None:
    """Set vcan0 down and wait until its bus (``body``) is DOWN and its speed not available.

    The bus state is what is waited on: the speed may be not available already for another reason (no frame
    within its cycle time), which says nothing about the link.
    """
    asyncio.run(
        until(
            port,
            BODY_STATE,
            lambda point: point.value == "DOWN",
            lambda: sh("ip", "link", "set", "vcan0", "down"),
        )
    )
    asyncio.run(until(port, SPEED, lambda point: point.status is Status.NOT_AVAILABLE))


def test_an_interface_going_down_makes_its_signals_unavailable_until_it_is_up(port: int) -> None:
    asyncio.run(until(port, SPEED, valid(10.0), lambda: sh("cansend", "vcan0", speed_frame(10.0))))
    try:
        take_vcan0_down(port)
        reconnects = asyncio.run(read(port, BODY_RECONNECTS)).value
        retry = asyncio.run(read(port, BODY_NEXT_RETRY)).value
        for _ in range(2):  # two attempts to reopen it while it is down fail: no reconnect in between
            retry = asyncio.run(
                until(port, BODY_NEXT_RETRY, lambda point, seen=retry: point.value != seen)
            ).value
        assert asyncio.run(read(port, BODY_STATE)).value == "DOWN"
        assert asyncio.run(read(port, BODY_RECONNECTS)).value == reconnects
        assert asyncio.run(read(port, ROUTED_SPEED)).status is Status.VALID  # the other bus goes on
    finally:
        sh("ip", "link", "set", "vcan0", "up")
    asyncio.run(until(port, BODY_STATE, lambda point: point.value == "UP"))
    asyncio.run(until(port, SPEED, valid(20.0), lambda: sh("cansend", "vcan0", speed_frame(20.0))))
