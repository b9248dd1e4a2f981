"""The project's recording reader returns what python-can's readers return, frame for frame, on every format.

Files are written by python-can's own writers from a set of frames covering the cases (standard and extended ids,
remote frames, error frames, CAN FD with and without bit rate switch and error state, empty and 64-byte payloads,
several channels, received and sent), then read by :func:`sdv.hal.recordings.read_recording` and by python-can's
reader for the format; every field must be equal. The candump screen forms (without ``-L``, with ``-ta``), which
python-can does not read, are printed from python-can's reading of the ``-L`` form of the frames and must read
back as it, on the fields the screen form carries.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import can
import pytest

from sdv.hal.recordings import read_recording
from sdv.resources import demo_recording

Key = tuple[object, ...]


def _frames() -> list[can.Message]:
    rng = random.Random(16)
    frames = []
    timestamp = 1_700_000_000.0
    for index in range(400):
        timestamp += rng.choice((0.000125, 0.001, 0.0105))
        extended = index % 3 == 0
        fd = index % 4 == 1
        remote = not fd and index % 11 == 5
        length = rng.choice((0, 1, 8, 12, 64) if fd else (0, 2, 8))
        frames.append(
            can.Message(
                timestamp=round(timestamp, 6),
                arbitration_id=rng.randrange(1 << 29 if extended else 1 << 11),
                is_extended_id=extended,
                is_remote_frame=remote,
                is_fd=fd,
                bitrate_switch=fd and index % 8 == 1,
                error_state_indicator=fd and index % 12 == 9,
                is_rx=index % 5 != 0,
                dlc=length,
                data=None if remote else bytes(rng.randrange(256) for _ in range(length)),
                channel=f"can{index % 2}",
            )
        )
    frames.append(can.Message(timestamp=round(timestamp + 1, 6), is_error_frame=True, channel="can0"))
    return frames


def _key(frame: can.Message) -> Key:
    return (
        frame.timestamp,
        frame.arbitration_id,
        frame.is_extended_id,
        frame.is_remote_frame,
        frame.is_error_frame,
        frame.is_fd,
        frame.bitrate_switch,
        frame.error_state_indicator,
        frame.is_rx,
        frame.dlc,
        bytes(frame.data),
        frame.channel,
    )


def _write(writer: Callable[[Path], can.io.generic.MessageWriter], path: Path) -> Path:
    with writer(path) as output:
        for frame in _frames():
            output.on_message_received(frame)
    return path


def _python_can(reader: type[can.io.generic.MessageReader], path: Path) -> list[Key]:
    binary = reader is can.BLFReader
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb" if binary else "rt") as stream, reader(stream) as frames:  # type: ignore[operator]
        return [_key(frame) for frame in frames]


def _ours(path: Path) -> list[Key]:
    return [_key(frame) for frame in read_recording(path)]


FORMATS: dict[
    str, tuple[Callable[[Path], can.io.generic.MessageWriter], type[can.io.generic.MessageReader]]
] = {
    ".log": (can.CanutilsLogWriter, can.CanutilsLogReader),
    ".asc": (can.ASCWriter, can.ASCReader),
    ".blf": (can.BLFWriter, can.BLFReader),
    ".trc": (can.TRCWriter, can.TRCReader),
    ".csv": (can.CSVWriter, can.CSVReader),
}


@pytest.mark.parametrize("suffix", list(FORMATS))
def test_every_format_reads_as_python_can_reads_it(tmp_path: Path, suffix: str) -> None:
    writer, reader = FORMATS[suffix]
    path = _write(writer, tmp_path / f"frames{suffix}")
    expected = _python_can(reader, path)
    assert (
        len(expected) >= 250
    )  # the writer wrote the frames (TRC: only classic data frames), not an empty file
    assert _ours(path) == expected


def test_a_compressed_candump_log_reads_as_python_can_reads_it(tmp_path: Path) -> None:
    plain = _write(can.CanutilsLogWriter, tmp_path / "frames.log")
    compressed = tmp_path / "frames.log.gz"
    compressed.write_bytes(gzip.compress(plain.read_bytes()))
    assert _ours(compressed) == _python_can(can.CanutilsLogReader, compressed)


def test_the_demo_drive_reads_as_python_can_reads_it() -> None:
    expected = _python_can(can.CanutilsLogReader, demo_recording())
    assert len(expected) > 10_000
    assert _ours(demo_recording()) == expected


def test_candump_log_lines_python_can_parses_its_own_way_read_the_same(tmp_path: Path) -> None:
    # A payload bytearray.fromhex refuses but python-can's per-byte parse takes, a direction flag, a numeric
    # channel, a remote frame with a length, an odd number of hex digits.
    path = tmp_path / "odd.log"
    path.write_text(
        "(1.000000) can0 123#+1+2\n"
        "(1.100000) 1 123#DEAD T\n"
        "(1.200000) can0 12345678#R4\n"
        "(1.300000) can0 123#ABC\n"
        "(1.400000) can0 7FF##3\n"
    )
    assert _ours(path) == _python_can(can.CanutilsLogReader, path)


def _screen_lines(frames: list[can.Message], timestamps: bool) -> Iterator[str]:
    """Frames as ``candump`` prints them, with ``-ta`` or without a timestamp."""
    for frame in frames:
        frame_id = f"{frame.arbitration_id:08X}" if frame.is_extended_id else f"{frame.arbitration_id:03X}"
        length = f"[{frame.dlc:02d}]" if frame.is_fd else f"[{frame.dlc}]"
        data = "remote request" if frame.is_remote_frame else " ".join(f"{byte:02X}" for byte in frame.data)
        stamp = f"({frame.timestamp:.6f})  " if timestamps else ""
        yield f"  {stamp}{frame.channel}  {frame_id}   {length}  {data}\n"


def _screen_key(frame: can.Message, timestamps: bool) -> Key:
    data = b"" if frame.is_remote_frame else bytes(frame.data)
    return (
        frame.timestamp if timestamps else 0.0,
        frame.arbitration_id,
        frame.is_extended_id,
        frame.is_remote_frame,
        frame.is_fd,
        frame.dlc,
        data,
        frame.channel,
    )


@pytest.mark.parametrize("timestamps", [False, True], ids=["candump", "candump -ta"])
def test_the_candump_screen_forms_read_as_python_can_reads_the_same_frames_logged(
    tmp_path: Path, timestamps: bool
) -> None:
    logged = _write(can.CanutilsLogWriter, tmp_path / "frames.log")
    with logged.open() as stream, can.CanutilsLogReader(stream) as reader:
        frames = [frame for frame in reader if not frame.is_error_frame]
    expected = [_screen_key(frame, timestamps) for frame in frames]
    screen = tmp_path / "screen.log"
    screen.write_text("".join(_screen_lines(frames, timestamps)))
    assert [_screen_key(frame, timestamps) for frame in read_recording(screen)] == expected
