"""On the kernel's SocketCAN: ECU identification over UDS from ECU processes, error frames, a bus going down.

One ``sdv serve`` process for the module serves ``body`` on ``vcan0`` with a ``diagnostics`` section: the engine
answers on 11-bit ids (0x7E0/0x7E8), the gateway with 29-bit normal fixed addressing (target 0x10), the brake on
11-bit ids (0x7E2/0x7EA) through the kernel's ISO-TP (module ``can-isotp``), and a fourth ECU receives every
request and never answers. The ECUs are ``tests/uds_responder.py`` processes: can-isotp's user-space stack on a
raw socket of their own, or the kernel's ISO-TP socket. Values are read with ``kuksa-client`` and the project's
client; frames are sent with ``cansend``.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator

import can
import pytest

from sdv.types.status import Status
from tests.kuksa_values import read_with_kuksa_client
from tests.serve_process import REPOSITORY, serving
from tests.socketcan.test_serve_socketcan import (
    SPEED_DBC,
    WAIT,
    read,
    sh,
    speed_frame,
    take_vcan0_down,
    until,
    valid,
)

pytestmark = pytest.mark.socketcan

RESPONDER = REPOSITORY / "tests" / "uds_responder.py"
SPEED = "Vehicle.Speed"
ENGINE = "Vehicle.SDV.Ecu.Engine."
GATEWAY = "Vehicle.SDV.Ecu.Gateway."
BRAKE = "Vehicle.SDV.Ecu.Brake."
SILENT = "Vehicle.SDV.Ecu.Silent."
DID_NAMES = ("SparePartNumber", "SoftwareVersion", "SerialNumber")
ERROR_FRAMES = "Sdv.Hal.Bus.body.Errors.ErrorFrame"
BODY_FRAMES = "Sdv.Hal.Bus.body.Frames"
BODY_STATE = "Sdv.Hal.Bus.body.State"

DBC = SPEED_DBC

PROFILE = """name: socketcan-diagnostics
buses:
  - {name: body, interface: socketcan, channel: vcan0, dbc: [body.dbc]}
signals:
  - {path: Vehicle.Speed, kind: sensor, datatype: float, source: {bus: body, message: Speed, signal: VehicleSpeed}}
diagnostics:
  poll_interval_s: 1
  response_timeout_s: 0.5
  retry: {initial_delay_s: 0.1, max_delay_s: 0.2}
  ecus:
    - {name: Engine, bus: body, request_id: 0x7E0, response_id: 0x7E8}
    - {name: Gateway, bus: body, addressing: normal_fixed, target_address: 0x10}
    - {name: Silent, bus: body, request_id: 0x7E1, response_id: 0x7E9}
"""
BRAKE_ECU = "    - {name: Brake, bus: body, request_id: 0x7E2, response_id: 0x7EA}\n"


BRAKE_SERIAL = "BRK-SN-" + "0" * 52 + "7"
"""60 bytes: 9 consecutive frames, more than a block of 8, so the kernel waits for the tester's second flow control."""
BRAKE_IDENTIFICATION = ("F187=BRK-PN-0815", "F189=BRK-2.1.0-kernel-isotp", f"F18C={BRAKE_SERIAL}")


def kernel_isotp_missing() -> str | None:
    """Why this kernel has no ISO-TP sockets, or None when it has them."""
    try:
        socket.socket(socket.AF_CAN, socket.SOCK_DGRAM, socket.CAN_ISOTP).close()
    except OSError as error:
        return f"this kernel has no ISO-TP sockets (module can-isotp: {error}); Debian's user-mode Linux lacks it"
    return None


def responder(*arguments: str) -> subprocess.Popen[str]:
    """An ECU process on vcan0, once it listens."""
    process = subprocess.Popen(
        [sys.executable, str(RESPONDER), "--channel", "vcan0", *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPOSITORY,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready", "the ECU process did not start"
    return process


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    directory = tmp_path_factory.mktemp("diagnostics")
    (directory / "body.dbc").write_text(DBC)
    profile = directory / "vehicle.yaml"
    profile.write_text(PROFILE + ("" if kernel_isotp_missing() else BRAKE_ECU))
    ecus = [
        responder("--request", "7E0", "--response", "7E8", "F189=SW-1.2.3", "F18C=ENG-SN-000000000042"),
        responder("--target", "10", "F187=GW-PN-77", "F189=GW-4.0", "F18C=GW0001"),
        responder("--request", "7E1", "--response", "7E9", "--ignore", "-1", "F189=NEVER-SENT"),
    ]
    if not kernel_isotp_missing():
        ecus.append(responder("--kernel", "--request", "7E2", "--response", "7EA", *BRAKE_IDENTIFICATION))
    try:
        with serving("--profile", str(profile)) as (served, _):
            asyncio.run(until(served, BODY_STATE, lambda point: point.value == "UP"))
            yield served
    finally:
        for ecu in ecus:
            ecu.kill()
            ecu.wait()


def test_ecu_identification_from_ecu_processes_is_read_by_kuksa_client(port: int) -> None:
    asyncio.run(until(port, GATEWAY + "SerialNumber", valid("GW0001")))
    asyncio.run(until(port, ENGINE + "SerialNumber", valid("ENG-SN-000000000042")))  # segmented by ISO-TP
    paths = [prefix + name for prefix in (ENGINE, GATEWAY, SILENT) for name in DID_NAMES]
    values = read_with_kuksa_client(port, paths)
    assert {path: entry["value"] for path, entry in values.items()} == {
        ENGINE + "SparePartNumber": None,  # requestOutOfRange from the engine
        ENGINE + "SoftwareVersion": "SW-1.2.3",
        ENGINE + "SerialNumber": "ENG-SN-000000000042",
        GATEWAY + "SparePartNumber": "GW-PN-77",
        GATEWAY + "SoftwareVersion": "GW-4.0",
        GATEWAY + "SerialNumber": "GW0001",
        SILENT + "SparePartNumber": None,  # asked, never answered
        SILENT + "SoftwareVersion": None,
        SILENT + "SerialNumber": None,
    }
    assert {entry["entry_type"] for entry in values.values()} == {"ATTRIBUTE"}


def test_an_ecu_on_the_kernels_isotp_is_read(port: int) -> None:
    missing = kernel_isotp_missing()
    if missing:
        pytest.skip(missing)
    # segmented by the kernel into unpadded frames, in blocks as the tester's flow control asks
    asyncio.run(until(port, BRAKE + "SerialNumber", valid(BRAKE_SERIAL)))
    values = read_with_kuksa_client(port, [BRAKE + name for name in DID_NAMES])
    assert {path: entry["value"] for path, entry in values.items()} == {
        BRAKE + "SparePartNumber": "BRK-PN-0815",
        BRAKE + "SoftwareVersion": "BRK-2.1.0-kernel-isotp",
        BRAKE + "SerialNumber": BRAKE_SERIAL,
    }


def test_a_silent_ecu_is_asked_again_and_serving_goes_on(port: int) -> None:
    with can.Bus(
        channel="vcan0", interface="socketcan", can_filters=[{"can_id": 0x7E1, "can_mask": 0x7FF}]
    ) as bus:
        assert bus.recv(WAIT) is not None, "the silent ECU is not asked again"
    asyncio.run(until(port, SPEED, valid(33.0), lambda: sh("cansend", "vcan0", speed_frame(33.0))))
    assert asyncio.run(read(port, SILENT + "SoftwareVersion")).value is None


def test_the_hal_never_sees_the_diagnostic_traffic(port: int) -> None:
    asyncio.run(until(port, ENGINE + "SoftwareVersion", valid("SW-1.2.3")))
    assert (
        asyncio.run(read(port, "Sdv.Hal.Bus.body.Errors.UnknownId")).value == 0
    )  # its kernel filters pass 0x100


def test_error_frames_on_a_quiet_bus_are_counted_and_never_decoded(port: int) -> None:
    asyncio.run(until(port, SPEED, valid(12.0), lambda: sh("cansend", "vcan0", speed_frame(12.0))))
    before = asyncio.run(read(port, ERROR_FRAMES)).value
    assert isinstance(before, int)
    # An error frame (CAN_ERR_FLAG) whose id bits are the speed message's, carrying 100 km/h as its data; no frame
    # follows it: the counters are published all the same.
    send = lambda: sh("cansend", "vcan0", "20000100#1027000000000000")  # noqa: E731
    counted = asyncio.run(until(port, ERROR_FRAMES, lambda point: (point.value or 0) > before, send))
    sender = (
        "import can\n"
        "with can.Bus(channel='vcan0', interface='socketcan') as bus:\n"
        "    bus.send(can.Message(arbitration_id=0x100, is_error_frame=True, data=bytes(8)))\n"
    )
    python_can = lambda: subprocess.run([sys.executable, "-c", sender], check=True, timeout=60)  # noqa: E731
    asyncio.run(
        until(port, ERROR_FRAMES, lambda point: (point.value or 0) > (counted.value or 0), python_can)
    )
    served = asyncio.run(read(port, SPEED))
    assert served.value == pytest.approx(12.0) and served.status is Status.VALID


def test_a_bus_that_goes_down_keeps_the_ecus_identification_and_is_read_again_when_up(port: int) -> None:
    asyncio.run(until(port, ENGINE + "SoftwareVersion", valid("SW-1.2.3")))
    try:
        take_vcan0_down(port)
        # an identification does not change while its bus is down: the attribute keeps the value it was read with
        assert asyncio.run(read(port, ENGINE + "SoftwareVersion")).value == "SW-1.2.3"
    finally:
        sh("ip", "link", "set", "vcan0", "up")
    asyncio.run(until(port, BODY_STATE, lambda point: point.value == "UP"))
    asyncio.run(until(port, SPEED, valid(20.0), lambda: sh("cansend", "vcan0", speed_frame(20.0))))
    # the diagnostics open the bus again at their next poll: the engine is asked again
    with can.Bus(
        channel="vcan0", interface="socketcan", can_filters=[{"can_id": 0x7E0, "can_mask": 0x7FF}]
    ) as bus:
        assert bus.recv(WAIT) is not None, "the engine was not asked again after the bus came back"
