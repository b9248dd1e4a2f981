"""The HAL commands as users run them: sdv decode, sdv profile init/check, sdv demo; recordings as buses."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import can
import cantools
import pytest

from sdv.cli.main import main
from sdv.hal.sources import RecordingSource, read_recording
from sdv.resources import demo_dbc, demo_profile, demo_recording


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sdv.cli.main", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def short_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 2,000 frames of the demo drive plus three frames no DBC describes, as a candump log."""
    path = tmp_path_factory.mktemp("logs") / "short.log"
    frames = []
    for index, frame in enumerate(read_recording(demo_recording())):
        if index == 2000:
            break
        frames.append(frame)
    frames.insert(
        10,
        can.Message(
            timestamp=frames[10].timestamp,
            arbitration_id=0x555,
            is_extended_id=False,
            data=b"\x01",
            channel="can0",
        ),
    )
    frames.insert(
        20,
        can.Message(
            timestamp=frames[20].timestamp,
            arbitration_id=0x0B4,
            is_extended_id=False,
            data=b"\x01\x02",
            channel="can0",
        ),
    )
    with can.CanutilsLogWriter(str(path)) as writer:
        for frame in frames:
            writer.on_message_received(frame)
    return path


def test_decode_jsonl_matches_cantools(short_log: Path) -> None:
    result = run("decode", "--dbc", str(demo_dbc()), "--log", str(short_log))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    database = cantools.database.load_file(str(demo_dbc()))
    injected = {(0x555, 1), (0x0B4, 2)}
    frames = [f for f in read_recording(short_log) if (f.arbitration_id, len(f.data)) not in injected]
    assert len(records) == len(frames) == 2000
    for record, frame in zip(records, frames, strict=True):
        expected = database.decode_message(frame.arbitration_id, frame.data)
        assert record["frame_id"] == frame.arbitration_id
        assert record["timestamp"] == frame.timestamp
        assert record["channel"] == "can0"
        assert record["message"] == database.get_message_by_frame_id(frame.arbitration_id).name
        assert record["signals"] == {
            name: (str(value) if hasattr(value, "name") else value) for name, value in expected.items()
        }
    assert "unknown_id" in result.stderr and "0x555" in result.stderr
    assert "wrong_length" in result.stderr
    assert "2002 frames, 2000 decoded, 2 not decoded (unknown_id: 1, wrong_length: 1)" in result.stderr


def test_decode_with_profile_names_signals_by_path(
    short_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["decode", "--profile", str(demo_profile()), "--log", str(short_log)]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    speeds = [r["signals"]["Vehicle.Speed"] for r in records if r["message"] == "VehicleDynamics"]
    gears = {
        r["signals"]["Vehicle.Powertrain.Transmission.SelectedGear"]
        for r in records
        if r["message"] == "Gear"
    }
    assert speeds and all(isinstance(speed, float) for speed in speeds)
    assert gears == {126}  # parked at the start of the drive


def test_decode_table_format(short_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "--dbc", str(demo_dbc()), "--log", str(short_log), "--format", "table"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2000
    assert any("VehicleDynamics" in line and "VehicleSpeed=" in line for line in lines)


@pytest.mark.slow
def test_profile_init_then_check_on_a_real_opendbc_file(tmp_path: Path) -> None:
    import opendbc

    dbc = Path(opendbc.__file__).parent / "dbc" / "hyundai_kia_generic.dbc"  # one cantools refuses
    output = tmp_path / "hyundai.yaml"
    assert main(["profile", "init", "--dbc", str(dbc), "-o", str(output)]) == 0
    text = output.read_text()
    assert "path: CLU11.CF_Clu_Vanz" in text or "path: CLU11." in text
    result = run("profile", "check", str(output))
    assert result.returncode == 0, result.stderr
    assert "ok:" in result.stdout


def test_profile_check_prints_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"""buses:
  - name: vehicle
    interface: virtual
    dbc: [{demo_dbc()}]
signals:
  - {{path: Vehicle.Speed, kind: sensor, datatype: uint8, source: {{bus: vehicle, message: VehicleDynamics, signal: VehicleSpeed}}}}
  - {{path: Vehicle.Other, kind: sensor, datatype: float, source: {{bus: vehicle, message: Nope, signal: X}}}}
"""
    )
    result = run("profile", "check", str(bad))
    assert result.returncode == 1
    assert "2 problems" in result.stderr
    assert f"{bad}: line 6: signals[0].datatype" in result.stderr
    assert f"{bad}: line 7: signals[1].source.message" in result.stderr


def test_demo_shows_the_drive() -> None:
    result = run("demo", "--every", "30")
    assert result.returncode == 0, result.stderr
    assert "76886 frames, 76886 decoded; bad frames: none" in result.stdout
    rows = [
        line.split()
        for line in result.stdout.splitlines()
        if line.strip() and line.split()[0].replace(".", "").isdigit()
    ]
    assert len(rows) >= 6
    assert max(float(row[1]) for row in rows if row[1] != "-") > 100  # the highway part


@pytest.mark.parametrize("suffix", [".asc", ".blf", ".csv", ".trc", ".log.gz"])
def test_recordings_of_every_format_replay(tmp_path: Path, suffix: str) -> None:
    frames = [f for _, f in zip(range(300), read_recording(demo_recording()), strict=False)]
    if suffix == ".trc":  # python-can writes TRC version 2.1, which has no CAN FD frames
        frames = [f for f in frames if len(f.data) <= 8]
    path = tmp_path / f"drive{suffix}"
    with can.Logger(str(path)) as writer:
        for frame in frames:
            writer.on_message_received(frame)
    replayed = list(read_recording(path))
    assert [(f.arbitration_id, bytes(f.data)) for f in replayed] == [
        (f.arbitration_id, bytes(f.data)) for f in frames
    ]


def test_realtime_replay_keeps_the_recorded_pace_and_loops(tmp_path: Path) -> None:
    path = tmp_path / "pace.log"
    with can.CanutilsLogWriter(str(path)) as writer:
        for index in range(5):
            writer.on_message_received(
                can.Message(
                    timestamp=100.0 + index * 0.05,
                    arbitration_id=0x1A0,
                    is_extended_id=False,
                    data=b"\x00\x00",
                    channel="can0",
                )
            )
    source = RecordingSource("vehicle", path, realtime=True, loop=True)
    try:
        start = time.time()
        stamps: list[float] = []
        while len(stamps) < 8:
            stamps.extend(frame.timestamp for frame in source.receive(0.5))
        elapsed = time.time() - start
    finally:
        source.close()
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert all(gap >= 0 for gap in gaps)  # monotonic across the loop
    assert elapsed >= 0.3  # 7 gaps of about 50 ms each were waited for, not skipped
    assert stamps[0] == pytest.approx(start, abs=1.0)  # restamped onto the wall clock


def test_unreadable_recording_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "drive.xyz"
    path.write_text("nothing")
    result = run("decode", "--dbc", str(demo_dbc()), "--log", str(path))
    assert result.returncode == 2
    assert "recording" in result.stderr and "drive.xyz" in result.stderr


def test_paused_replay_goes_silent_and_resumes_at_its_pace(tmp_path: Path) -> None:
    path = tmp_path / "pace.log"
    with can.CanutilsLogWriter(str(path)) as writer:
        for index in range(40):
            writer.on_message_received(
                can.Message(
                    timestamp=10.0 + index * 0.01,
                    arbitration_id=0x1A0,
                    is_extended_id=False,
                    data=b"\x00\x00",
                )
            )
    source = RecordingSource("vehicle", path, realtime=True)
    try:
        first = source.receive(0.05)
        assert first
        source.pause()
        assert source.paused
        assert source.receive(0.05) == []
        time.sleep(0.2)
        source.resume()
        later = source.receive(0.05)
        assert later
        # Resumed frames are stamped after the pause, and the recording did not skip ahead.
        assert later[0].timestamp >= first[-1].timestamp + 0.2
        assert len(first) + len(later) < 40
    finally:
        source.close()
