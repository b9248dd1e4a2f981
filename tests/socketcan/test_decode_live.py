"""``sdv decode`` on the kernel's SocketCAN: a live ``vcan0`` decoded as frames come, ended with Ctrl-C (SIGINT).

Each test runs ``sdv decode`` as a process of its own, sends frames with ``cansend`` and reads the decoded lines
as they are written; the process is interrupted as a terminal's Ctrl-C does (SIGINT to a Python subprocess: a
background job of a shell would ignore it) and ends with its summary and exit status 130. ``candump -L`` piped
into ``sdv decode --log -`` is the other way of decoding a live bus.
"""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from tests.serve_process import REPOSITORY
from tests.socketcan.test_serve_socketcan import SPEED_DBC, WAIT, sh
from tests.waiting import wait_until

pytestmark = pytest.mark.socketcan

DECODE = (sys.executable, "-m", "sdv.cli.main", "decode")
DBC = (
    SPEED_DBC
    + """
BO_ 257 Gear: 2 ECU
 SG_ Position : 7|4@0+ (1,0) [0|15] "" CCU
 SG_ Torque : 3|12@0- (0.5,0) [-1000|1000] "Nm" CCU

BO_ 2566848528 Trailer: 8 ECU
 SG_ Lamps : 0|8@1+ (1,0) [0|255] "" CCU

VAL_ 257 Position 0 "P" 1 "R" 2 "N" 3 "D" ;
"""
)
PROFILE = """name: live-decode
buses:
  - {name: body, interface: socketcan, channel: vcan0, dbc: [car.dbc]}
signals:
  - {path: Vehicle.Speed, kind: sensor, datatype: float, source: {bus: body, message: Speed, signal: VehicleSpeed}}
"""
# The frames cansend sends, and what each decodes to under the DBC's names. Gear is big-endian and 2 bytes long:
# the 8-byte frame is cut to its DBC length before Torque is read (the padding bits are never part of it).
FRAMES = ("100#D204000000000000", "101#3FFEAAAAAAAAAAAA", "18FF0010#0500000000000000")
DECODED = [
    ("Speed", 0x100, {"VehicleSpeed": 12.34}),
    ("Gear", 0x101, {"Position": "D", "Torque": -1.0}),
    ("Trailer", 0x18FF0010, {"Lamps": 5}),
]
UNMAPPED = "123#0102030405060708"
"""An id the DBC does not declare: the kernel's receive filters keep it from the decoder."""


@pytest.fixture
def dbc(tmp_path: Path) -> Path:
    path = tmp_path / "car.dbc"
    path.write_text(DBC)
    return path


class Lines:
    """A stream's lines collected by a thread; :meth:`next` waits for the next one up to a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def next(self) -> str:
        try:
            line = self._lines.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError(f"no line came within {WAIT:.0f} s") from None
        assert line is not None, "the stream ended"
        return line

    def rest(self) -> list[str]:
        """The lines left once the stream ended."""
        self._thread.join(WAIT)
        lines = []
        while (line := self._lines.get_nowait()) is not None:
            lines.append(line)
        return lines


@contextmanager
def live_decode(*arguments: str) -> Iterator[tuple[subprocess.Popen[str], Lines, Lines]]:
    """``sdv decode ARGUMENTS`` once its bus is open: (process, its stdout lines, its stderr lines)."""
    process = subprocess.Popen(
        [*DECODE, *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPOSITORY
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        out, err = Lines(process.stdout), Lines(process.stderr)
        assert err.next() == "sdv decode: decoding socketcan channel vcan0"
        yield process, out, err
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def interrupted(process: subprocess.Popen[str], err: Lines) -> list[str]:
    """Ctrl-C the decode; its remaining standard error once it ended with 130."""
    process.send_signal(signal.SIGINT)
    assert process.wait(WAIT) == 130
    return err.rest()


def test_frames_sent_with_cansend_are_decoded_live_until_ctrl_c(dbc: Path) -> None:
    with live_decode("--interface", "socketcan", "--channel", "vcan0", "--dbc", str(dbc)) as (
        decode,
        out,
        err,
    ):
        sh("cansend", "vcan0", UNMAPPED)
        records = []
        for frame in FRAMES:
            sh("cansend", "vcan0", frame)
            records.append(json.loads(out.next()))  # written as it is decoded, not when the decode ends
        summary = interrupted(decode, err)
    assert [(record["message"], record["frame_id"], record["signals"]) for record in records] == DECODED
    assert {record["channel"] for record in records} == {"vcan0"}
    assert summary == ["3 frames, 3 decoded, 0 not decoded"]  # the unmapped id never reached it


def test_a_profile_decodes_live_frames_into_its_vss_paths(dbc: Path) -> None:
    profile = dbc.with_name("car.yaml")
    profile.write_text(PROFILE)
    arguments = (
        "--profile",
        str(profile),
        "--interface",
        "socketcan",
        "--channel",
        "vcan0",
        "--format",
        "table",
    )
    with live_decode(*arguments) as (decode, out, err):
        sh("cansend", "vcan0", FRAMES[0])
        line = out.next()
        summary = interrupted(decode, err)
    assert line.split()[1:] == ["vcan0", "100", "Speed", "Vehicle.Speed=12.34"]
    assert summary == ["1 frames, 1 decoded, 0 not decoded"]


def receivers_on_vcan0() -> int:
    """How many unfiltered receivers the kernel holds for vcan0 (a raw socket that listens to all adds one)."""
    lines = Path("/proc/net/can/rcvlist_all").read_text().splitlines()
    return sum(1 for line in lines if line.split()[:1] == ["vcan0"])


def test_candump_piped_into_a_decode_of_standard_input(dbc: Path) -> None:
    before = receivers_on_vcan0()
    # -n: candump ends after the three frames, which ends the decode's input
    candump = subprocess.Popen(["candump", "-L", "-n", str(len(FRAMES)), "vcan0"], stdout=subprocess.PIPE)
    processes: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = [candump]
    try:
        decode = subprocess.Popen(
            [*DECODE, "--dbc", str(dbc), "--log", "-"],
            stdin=candump.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPOSITORY,
        )
        processes.append(decode)
        assert candump.stdout is not None
        candump.stdout.close()  # the decode holds the pipe's reading end
        wait_until(lambda: receivers_on_vcan0() > before, what="candump listening on vcan0")
        for frame in FRAMES:
            sh("cansend", "vcan0", frame)
        out, err = decode.communicate(timeout=WAIT)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()
    assert decode.returncode == 0, err
    assert [json.loads(line)["signals"] for line in out.splitlines()] == [signals for *_, signals in DECODED]
    assert err.splitlines() == ["3 frames, 3 decoded, 0 not decoded"]
