"""Hostile recordings: every failure of a python-can reader is one error naming file, place and format."""

from __future__ import annotations

import gzip
import random
import struct
import subprocess
import sys
import tracemalloc
import zlib
from dataclasses import dataclass
from pathlib import Path

import can
import pytest

from sdv.errors import BusError, HalError
from sdv.hal.recordings import MAX_BLF_PENDING, MAX_BLF_READ, MAX_LINE_CHARS, read_recording
from sdv.hal.sources import RecordingSource
from sdv.resources import demo_dbc, demo_recording
from tests.bounded_process import assert_one_line_error, sdv_bounded

EXPECTED = {
    ".log": "expected candump lines: -L (1700000000.000000) can0 123#DEADBEEF, or as candump prints them",
    ".asc": "expected Vector ASC lines",
    ".blf": "expected a Vector BLF file",
    ".csv": "expected python-can CSV rows",
    ".trc": "expected PEAK TRC lines",
}


@dataclass(frozen=True)
class Hostile:
    id: str
    name: str
    content: bytes
    where: str
    says: str


HOSTILE = [
    Hostile("blf_eight_bytes", "x.blf", b"\x00\x01\x02\x03\x04\x05\x06\x07", "byte offset 8", "unpack"),
    Hostile("blf_wrong_magic", "x.blf", b"GOLL" + bytes(140), "byte offset 72", "Unexpected file format"),
    Hostile("blf_header_size_zero", "x.blf", b"LOGG" + bytes(140), "byte offset 72", "of -72 bytes"),
    Hostile(
        "candump_without_timestamps",
        "x.log",
        b"(1.0) can0 123#01\n  can0  123   [2]  01 02\n",
        "line 2",
        "too many values",
    ),
    Hostile("candump_bad_id", "x.log", b"(1.0) can0 12G#0102\n", "line 1", "'12G'"),
    Hostile("candump_bad_timestamp", "x.log", b"(abc) can0 123#0102\n", "line 1", "'abc'"),
    Hostile(
        "candump_not_utf8", "x.log", b"(1.0) can0 123#01\xff\n", "line 1", "byte 18 of the line is not UTF-8"
    ),
    Hostile("candump_not_gzip", "x.log.gz", b"plain text", "start of the file", "Not a gzipped file"),
    Hostile(
        "asc_bad_id",
        "x.asc",
        b"date Mon\nbase hex timestamps absolute\n 1.0 1 XYZ Rx d 8 00\n",
        "line 3",
        "XYZ",
    ),
    Hostile(
        "csv_bad_id",
        "x.csv",
        b"timestamp,arbitration_id,extended,remote,error,dlc,data\n1.0,zz,0,0,0,2,AQI=\n",
        "line 2",
        "zz",
    ),
    Hostile("trc_unknown_version", "x.trc", b";$FILEVERSION=9.9\n 1) 1.0 Rx 0123 - 2 01\n", "line 2", "'Rx'"),
]


@pytest.mark.parametrize("case", HOSTILE, ids=[case.id for case in HOSTILE])
def test_hostile_recording_is_one_error_naming_file_place_and_format(tmp_path: Path, case: Hostile) -> None:
    path = tmp_path / case.name
    path.write_bytes(case.content)
    with pytest.raises(BusError) as raised:
        list(read_recording(path))
    message = str(raised.value)
    assert message.startswith(f"recording {path}: {case.where}: "), message
    assert case.says in message
    assert EXPECTED[path.suffixes[0]] in message
    assert "\n" not in message


@pytest.mark.parametrize("case", HOSTILE[:4], ids=[case.id for case in HOSTILE[:4]])
def test_decode_of_a_hostile_recording_prints_one_line(tmp_path: Path, case: Hostile) -> None:
    path = tmp_path / case.name
    path.write_bytes(case.content)
    result = sdv_bounded("decode", "--dbc", str(demo_dbc()), "--log", str(path))
    assert_one_line_error(result, f"recording {path}: {case.where}: ", EXPECTED[path.suffixes[0]])


@pytest.mark.parametrize("suffix", [*EXPECTED, ".blf.gz", ".log.gz"])
@pytest.mark.parametrize("seed", range(4))
def test_random_bytes_are_refused_as_the_format(tmp_path: Path, suffix: str, seed: int) -> None:
    generator = random.Random(seed)
    data = bytes(generator.randrange(256) for _ in range(generator.choice([8, 100, 5000])))
    path = tmp_path / f"random{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    try:
        list(read_recording(path))
    except BusError as error:
        assert str(error).startswith(f"recording {path}: ")
        assert EXPECTED[path.suffixes[0]] in str(error)


def test_unknown_suffix_names_the_formats(tmp_path: Path) -> None:
    path = tmp_path / "drive.xyz"
    path.write_text("nothing")
    with pytest.raises(
        HalError, match=r"format not known; expected a suffix \.log, \.asc, \.blf, \.csv, \.trc"
    ):
        list(read_recording(path))


def _blf(tmp_path: Path, frames: int = 3) -> bytes:
    path = tmp_path / "valid.blf"
    with can.BLFWriter(str(path)) as writer:
        for index in range(frames):
            writer.on_message_received(can.Message(timestamp=1.0 + index, arbitration_id=0x123, data=b"\x01"))
    return path.read_bytes()


def test_blf_object_claiming_gigabytes_is_refused_before_it_is_read(tmp_path: Path) -> None:
    data = bytearray(_blf(tmp_path))
    header_size = struct.unpack_from("<L", data, 4)[0]
    struct.pack_into("<L", data, header_size + 8, 0x7FFFFFF0)  # the first object's size field
    path = tmp_path / "huge.blf.gz"
    path.write_bytes(gzip.compress(bytes(data)))
    result = sdv_bounded("decode", "--dbc", str(demo_dbc()), "--log", str(path))
    assert_one_line_error(
        result, f"recording {path}: byte offset {header_size + 16}", f"at most {MAX_BLF_READ}"
    )


def _container(data: bytes) -> bytes:
    """A BLF container object: the object header (type 10), the container header (zlib), the compressed data."""
    return _compressed_container(zlib.compress(data, 9), len(data))


def _compressed_container(compressed: bytes, inflated_size: int) -> bytes:
    """A BLF container object holding ``compressed``, zlib data that inflates to ``inflated_size`` bytes."""
    return (
        struct.pack("<4sHHLL", b"LOBJ", 16, 1, 32 + len(compressed), 10)
        + struct.pack("<H6xL4x", 2, inflated_size)
        + compressed
        + bytes((32 + len(compressed)) % 4)  # the padding python-can skips: object size modulo 4
    )


def test_zlib_container_inflating_to_a_hundred_megabytes_is_refused(tmp_path: Path) -> None:
    data = _blf(tmp_path)
    header_size = struct.unpack_from("<L", data, 4)[0]
    path = tmp_path / "bomb.blf"
    path.write_bytes(data[:header_size] + _container(bytes(400 * MAX_BLF_READ)))
    assert path.stat().st_size < MAX_BLF_READ
    result = sdv_bounded("decode", "--dbc", str(demo_dbc()), "--log", str(path))
    assert_one_line_error(result, f"recording {path}: byte offset", f"at most {MAX_BLF_PENDING}")


def test_object_continued_over_many_containers_is_refused(tmp_path: Path) -> None:
    # An object claiming 2 GiB makes python-can join every following container to it.
    data = _blf(tmp_path)
    header_size = struct.unpack_from("<L", data, 4)[0]
    claim = struct.pack("<4sHHLL", b"LOBJ", 16, 1, 0x7FFFFFF0, 86) + bytes(MAX_BLF_READ - 16)
    filler = _container(bytes(MAX_BLF_READ // 2))
    path = tmp_path / "continued.blf"
    path.write_bytes(data[:header_size] + _container(claim) + filler * 200)
    with pytest.raises(BusError, match=f"at most {MAX_BLF_PENDING}"):
        list(read_recording(path))


def test_line_without_end_in_a_compressed_log_is_refused_within_fixed_memory(tmp_path: Path) -> None:
    path = tmp_path / "endless.log.gz"
    with gzip.open(path, "wb") as compressed:
        chunk = b"A" * (1 << 20)
        for _ in range(64):  # 64 MiB unpacked: read whole, the line would cost that much
            compressed.write(chunk)
    result = sdv_bounded("decode", "--dbc", str(demo_dbc()), "--log", str(path))
    assert_one_line_error(result, f"recording {path}: line 1: line longer than {MAX_LINE_CHARS} characters")


def test_recording_name_too_long_for_the_file_system_is_a_profile_problem(tmp_path: Path) -> None:
    # Found by tests/fuzz: Path.is_file() raises for a name longer than the file system allows.
    profile = tmp_path / "profile.yaml"
    name = "recording" * 40 + ".log"
    profile.write_text(
        f"name: long\nbuses:\n  - {{name: body, recording: {{file: {name}}}, dbc: [{demo_dbc()}]}}\n"
    )
    result = sdv_bounded("profile", "check", str(profile))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stderr
    assert (
        f"{profile}: line 3: buses[0].recording.file: recording {tmp_path / name} cannot be accessed: "
        in (result.stderr)
    )


def test_recording_bus_with_a_name_too_long_is_a_bus_error(tmp_path: Path) -> None:
    path = tmp_path / ("recording" * 40 + ".log")
    with pytest.raises(BusError, match="cannot be accessed"):
        RecordingSource("body", path)


def test_a_container_is_never_inflated_past_the_bound(tmp_path: Path) -> None:
    # Found by tests/fuzz: a zlib container of nearly MAX_BLF_READ bytes of zeros inflates to about 260 MB, which
    # python-can's loop inflates whole before anything can look at it.
    inflater = zlib.compressobj(9)
    compressed = b"".join(inflater.compress(bytes(1 << 20)) for _ in range(240)) + inflater.flush()
    assert len(compressed) < MAX_BLF_READ - 64
    container = _compressed_container(compressed, 240 << 20)
    data = _blf(tmp_path)
    header_size = struct.unpack_from("<L", data, 4)[0]
    path = tmp_path / "zeros.blf"
    path.write_bytes(data[:header_size] + container)
    tracemalloc.start()
    try:
        with pytest.raises(BusError, match=f"inflates to more than {MAX_BLF_PENDING} bytes"):
            list(read_recording(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MAX_BLF_PENDING  # a few bounded buffers, never the 240 MiB the container holds


def test_candump_as_it_prints_with_and_without_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "screen.log"
    path.write_text(
        "  can0  123   [4]  DE AD BE EF\n"
        " (1700000000.250000)  can0  1ABCDEF0   [2]  01 02\n"
        "  can1  321  [12]  00 11 22 33 44 55 66 77 88 99 AA BB\n"
        "  can0  7FF   [0]  remote request\n"
    )
    frames = list(read_recording(path))
    assert [
        (f.arbitration_id, f.is_extended_id, f.is_fd, f.is_remote_frame, bytes(f.data)) for f in frames
    ] == [
        (0x123, False, False, False, bytes.fromhex("DEADBEEF")),
        (0x1ABCDEF0, True, False, False, b"\x01\x02"),
        (0x321, False, True, False, bytes.fromhex("00112233445566778899AABB")),
        (0x7FF, False, False, True, b""),
    ]
    assert [f.timestamp for f in frames] == [0.0, 1700000000.25, 0.0, 0.0]
    assert [f.channel for f in frames] == ["can0", "can0", "can1", "can0"]


def test_candump_screen_line_with_the_wrong_byte_count_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "short.log"
    path.write_text("  can0  123   [4]  DE AD\n")
    with pytest.raises(
        BusError, match=r"line 1: \[4\] announces 4 bytes, the line has 2; expected candump lines"
    ):
        list(read_recording(path))


def test_sdv_decode_reads_a_plain_candump_capture(tmp_path: Path) -> None:
    recording = tmp_path / "plain.log"
    with can.LogReader(str(demo_recording())) as reader:  # the demo drive, rewritten as candump prints it
        lines = [
            f"  {frame.channel}  {frame.arbitration_id:03X}   [{len(frame.data)}]  {bytes(frame.data).hex(' ').upper()}\n"
            for frame, _ in zip(reader, range(500), strict=False)
            if not frame.is_fd and not frame.is_extended_id
        ]
    recording.write_text("".join(lines))
    result = sdv_bounded("decode", "--dbc", str(demo_dbc()), "--log", str(recording))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and result.stdout.count("\n") > 10


def test_sdv_decode_reads_candump_text_from_standard_input() -> None:
    lines = "(1.0) can0 0AA#0000000000000000\n  can0  0AA   [8]  00 00 00 00 00 00 00 00\n"
    result = subprocess.run(
        [sys.executable, "-m", "sdv.cli.main", "decode", "--dbc", str(demo_dbc()), "--log", "-"],
        input="(0.5) can0 0B4#0000FEFF00000004\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"message": "VehicleDynamics"' in result.stdout
    mixed = subprocess.run(
        [sys.executable, "-m", "sdv.cli.main", "decode", "--dbc", str(demo_dbc()), "--log", "-"],
        input=lines,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (
        mixed.returncode == 2 and "recording -: line 2:" in mixed.stderr and "Traceback" not in mixed.stderr
    )
