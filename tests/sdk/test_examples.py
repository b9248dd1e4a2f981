"""The examples as a user runs them: subprocesses against a live server."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdv.api.server import SdvServer
from sdv.hal.processor import SignalUpdate, Status

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLES = REPOSITORY / "examples"
ACCELERATION = "Vehicle.Acceleration.Longitudinal"
DRIVER_BRAKING = "Vehicle.SDV.Chassis.Brake.IsDriverBraking"
BRAKE_PRESSURE = "Vehicle.SDV.Chassis.Brake.Pressure"


@pytest.fixture(scope="module")
def sdv_serve() -> Iterator[str]:
    """``sdv serve --port 0`` as a subprocess (the demo drive replaying); its address."""
    process = subprocess.Popen(
        [sys.executable, "-m", "sdv.cli.main", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPOSITORY,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"sdv serve: listening on (127\.0\.0\.1:\d+)\n", line)
        assert match, line
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _run(script: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPOSITORY,
        check=False,
    )


@pytest.mark.slow
def test_cluster_printer_prints_count_lines(sdv_serve: str) -> None:
    result = _run("cluster_printer.py", "--server", sdv_serve, "--count", "3")
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    # A value the server cannot vouch for shows as "--": on a loaded machine the replay can fall behind the
    # signals' cycle times, and the HAL then rightly serves them as stale.
    pattern = (
        r"speed +(\d+\.\d|--) km/h \| gear ([PRND]|--) \| SOC (\d+\.\d|--) % \| range (\d+|--) km "
        r"\| indicators (off|left|right|--) \| doors (closed|[A-Za-z,]+|--) \| lights (off|low|high|low\+high|--) "
        r"\| outside (-?\d+\.\d|--) °C"
    )
    assert all(re.fullmatch(pattern, line) for line in lines), lines


def test_hard_braking_ends_at_its_timeout(sdv_serve: str) -> None:
    # The demo drive starts parked: no hard braking in its first seconds.
    started = time.monotonic()
    result = _run("hard_braking.py", "--server", sdv_serve, "--timeout", "1")
    assert (result.returncode, result.stderr) == (0, "")
    *ignored, last = result.stdout.splitlines()
    assert last == "timeout after 1 s: 0 hard-braking event(s)"
    # On a loaded machine the replay can fall behind the signals' cycle times: the example then says which values
    # it ignored, and still counts nothing.
    assert all(re.fullmatch(r"ignored \w+: [A-Z0-9_]+, no trustworthy value", line) for line in ignored), (
        ignored
    )
    assert time.monotonic() - started < 15


def test_an_example_names_an_unreachable_server(unused_port: int) -> None:
    result = _run("cluster_printer.py", "--server", f"127.0.0.1:{unused_port}", "--count", "1")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"cluster_printer: cannot reach 127.0.0.1:{unused_port}")


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_hard_braking_reports_trusted_events_and_ignores_the_rest(bare_typed_server: SdvServer) -> None:
    # The ADAS service reads the broker: values published here reach the detector through vehicle.adas.stream().
    broker = bare_typed_server.broker
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "hard_braking.py"),
        "--server",
        bare_typed_server.target,
        "--count",
        "2",
        "--timeout",
        "20",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPOSITORY,
    )
    assert process.stdout is not None

    async def line() -> str:
        return (await asyncio.wait_for(process.stdout.readline(), 10)).decode()  # type: ignore[union-attr]

    def publish(path: str, value: object, status: Status = Status.VALID) -> None:
        broker.publish([SignalUpdate(path, value, time.time(), status)])  # type: ignore[arg-type]

    try:
        # Nothing was received yet: none of the three fields has a value.
        first = sorted([await line() for _ in range(3)])
        assert first == sorted(
            f"ignored {name}: NOT_AVAILABLE, no trustworthy value\n"
            for name in ("longitudinal_acceleration", "brake_pressed", "brake_pressure")
        )
        broker.publish(
            [
                SignalUpdate(DRIVER_BRAKING, True, time.time(), Status.VALID),
                SignalUpdate(BRAKE_PRESSURE, 41.5, time.time(), Status.VALID),
                SignalUpdate(ACCELERATION, -7.25, time.time(), Status.VALID),
            ]
        )
        event = await line()
        assert re.fullmatch(
            r"HARD BRAKING at \S+: longitudinal acceleration -7\.2 m/s² \(threshold -6\), "
            r"brake pedal pressed, brake pressure 41\.5 bar\n",
            event,
        ), event
        # A stale value, however low, is no braking event; the validity is named.
        publish(ACCELERATION, -9.5, Status.STALE)
        assert await line() == "ignored longitudinal_acceleration: STALE, no trustworthy value\n"
        publish(ACCELERATION, -9.5, Status.E2E_FAILED)
        assert await line() == "ignored longitudinal_acceleration: E2E_FAILED, no trustworthy value\n"
        publish(ACCELERATION, -3.0)  # trusted again, above the threshold: nothing to report
        publish(BRAKE_PRESSURE, 12.0, Status.STALE)
        assert await line() == "ignored brake_pressure: STALE, no trustworthy value\n"
        publish(ACCELERATION, -6.5)
        event = await line()
        assert event.startswith("HARD BRAKING at ") and event.endswith("brake pressure unknown\n"), event
        assert await asyncio.wait_for(process.wait(), 10) == 0  # --count 2 reached
        assert await process.stdout.read() == b""
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_hard_braking_needs_the_adas_service(bare_server: SdvServer) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "hard_braking.py"),
        "--server",
        bare_server.target,
        "--timeout",
        "10",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPOSITORY,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2 and stdout == b""
    assert stderr.decode() == (
        f"hard_braking: {bare_server.target} does not serve sdv.adas.v1.Adas: "
        "its vehicle profile maps none of the service's fields\n"
    )
