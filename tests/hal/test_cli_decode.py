"""``sdv decode`` decodes as ``sdv serve`` does: padded frames, multiplexing, names as written, live buses."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import can
import pytest
from can.interfaces import virtual

from sdv.cli.main import main
from sdv.hal.processor import FrameProcessor
from sdv.hal.vehicle import load_vehicle
from tests.waiting import wait_until

DBC = """VERSION ""

NS_ :

BS_:

BU_: ECU GW

BO_ 100 Short: 2 ECU
 SG_ Angle : 7|16@0- (0.5,0) [-1000|1000] "deg" GW

BO_ 200 Paged: 3 ECU
 SG_ Page M : 0|8@1+ (1,0) [0|255] "" GW
 SG_ Left m0 : 8|8@1+ (1,0) [0|255] "" GW
 SG_ Right m1 : 8|8@1+ (1,0) [0|255] "" GW
 SG_ 0_COUNTER : 16|4@1+ (1,0) [0|15] "" GW
"""

PROFILE = """name: test
buses:
  - name: body
    interface: virtual
    channel: unused
    dbc: [car.dbc]
signals:
  - {path: Vehicle.Angle, kind: sensor, datatype: float, source: {bus: body, message: Short, signal: Angle}}
  - {path: Vehicle.Left, kind: sensor, datatype: uint8, source: {bus: body, message: Paged, signal: Left}}
  - {path: Vehicle.Counter, kind: sensor, datatype: uint8, source: {bus: body, message: Paged, signal: 0_COUNTER}}
"""

# candump lines: Short padded to 8 bytes (Angle = 0x0102 * 0.5), Paged page 0, Paged with a page it lacks.
RECORDING = "(1.0) can0 064#0102AAAAAAAAAAAA\n(2.0) can0 0C8#00070B\n(3.0) can0 0C8#05070B\n"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    (tmp_path / "car.dbc").write_text(DBC)
    profile = tmp_path / "car.yaml"
    profile.write_text(PROFILE)
    log = tmp_path / "drive.log"
    log.write_text(RECORDING)
    return tmp_path / "car.dbc", profile, log


def records(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_profile_decode_is_the_servers_decode(
    files: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, profile, log = files

    assert main(["decode", "--profile", str(profile), "--log", str(log)]) == 0

    captured = capsys.readouterr()
    decoded = records(captured.out)
    # The padding is cut before the big-endian Angle is read: 0x0102 * 0.5, not the bits of the padding.
    assert [record["signals"] for record in decoded] == [
        {"Vehicle.Angle": 129.0},
        {"Vehicle.Left": 7, "Vehicle.Counter": 11},
    ]
    assert "unknown_multiplexer" in captured.err
    assert "3 frames, 2 decoded, 1 not decoded (unknown_multiplexer: 1)" in captured.err
    # What the server's processor publishes from the same frames.
    processor = FrameProcessor(load_vehicle(profile))
    updates = processor.process(0, list(can.LogReader(str(log))))
    assert {update.path: update.value for update in updates} == {
        "Vehicle.Angle": 129.0,
        "Vehicle.Left": 7,
        "Vehicle.Counter": 11,
    }
    assert processor.statistics()["body"].bad["unknown_multiplexer"] == 1


def test_dbc_decode_reports_exactly_the_selected_signals_under_their_written_names(
    files: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dbc, _, log = files

    assert main(["decode", "--dbc", str(dbc), "--log", str(log)]) == 0

    captured = capsys.readouterr()
    assert [record["signals"] for record in records(captured.out)] == [
        {"Angle": 129.0},
        {"Page": 0, "Left": 7, "0_COUNTER": 11},
    ]
    assert "multiplexer Page = 5 selects no branch; expected one of 0, 1" in captured.err


def test_live_decode_of_a_virtual_bus_ends_on_sigterm(
    files: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    dbc, _, _ = files
    channel = f"decode-live-{os.getpid()}-{threading.get_ident()}"
    sender = can.Bus(interface="virtual", channel=channel)

    def feed() -> None:
        # The decoder's bus is open once the channel has a second member.
        wait_until(lambda: len(virtual.channels.get(channel, ())) >= 2, what="the decoder's virtual bus")
        sender.send(can.Message(arbitration_id=100, is_extended_id=False, data=bytes([1, 2])))
        sender.send(can.Message(arbitration_id=200, is_extended_id=False, data=bytes([1, 9, 3])))
        os.kill(os.getpid(), signal.SIGTERM)  # frames sent before the request are still decoded

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        code = main(["decode", "--dbc", str(dbc), "--interface", "virtual", "--channel", channel])
    finally:
        feeder.join()
        sender.shutdown()

    captured = capsys.readouterr()
    assert code == 0
    assert [record["signals"] for record in records(captured.out)] == [
        {"Angle": 129.0},
        {"Page": 1, "Right": 9, "0_COUNTER": 3},
    ]
    assert "2 frames, 2 decoded, 0 not decoded" in captured.err
    assert (
        channel not in virtual.channels or len(virtual.channels[channel]) == 0
    )  # the decoder's bus is closed


# Every way a frame of the profile's bus can fail, twice the same reason, and a frame decoded in part.
BAD_RECORDING = (
    "(1.0) can0 064#0102AAAAAAAAAAAA\n(2.0) can0 0C8#00070B\n(3.0) can0 0C8#05070B\n(4.0) can0 0C8#0007\n"
    "(5.0) can0 123#00\n(6.0) can0 0C8#07070B\n(7.0) can0 064#7FFF\n(8.0) can0 0C8#01090B\n"
)


def test_profile_decode_names_each_bad_frame_once_with_its_reasons(
    files: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, profile, log = files
    log.write_text(BAD_RECORDING)

    assert main(["decode", "--profile", str(profile), "--log", str(log), "--format", "table"]) == 0

    captured = capsys.readouterr()
    assert [line.split() for line in captured.out.splitlines()] == [
        ["1.000000", "can0", "64", "Short", "Vehicle.Angle=129"],
        ["2.000000", "can0", "C8", "Paged", "Vehicle.Left=7", "Vehicle.Counter=11"],
        ["7.000000", "can0", "64", "Short"],  # its only signal out of range: the frame decoded, no value
        ["8.000000", "can0", "C8", "Paged", "Vehicle.Counter=11"],  # page 1: Left is not selected
    ]
    assert [line for line in captured.err.splitlines() if not line.startswith("WARNING")] == [
        "not decoded: 3.000000 id 0xC8: unknown_multiplexer (1)",
        "not decoded: 4.000000 id 0xC8: wrong_length (1)",
        "not decoded: 5.000000 id 0x123: unknown_id (1)",
        "not decoded: 6.000000 id 0xC8: unknown_multiplexer (1)",
        "decoded in part: 7.000000 id 0x64: out_of_range (1)",
        "8 frames, 4 decoded, 4 not decoded (out_of_range: 1, unknown_id: 1, unknown_multiplexer: 2, "
        "wrong_length: 1)",
    ]
