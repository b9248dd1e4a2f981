"""``sdv get|set|subscribe|list|monitor`` against a real server: output, exit codes and one-line errors."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import can
import pytest

from sdv.broker.access import UNRESTRICTED
from sdv.hal.vehicle import VehicleDefinition

from ..waiting import DEADLINE_S, wait_until
from .conftest import RUN_CLI, Result, received_frames
from .serving import ServerThread

Sdv = Callable[..., Result]
LOW_BEAM = "Vehicle.Body.Lights.Beam.Low.IsOn"
CABIN_TEMPERATURE = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
REPOSITORY = Path(__file__).resolve().parents[2]


def test_get_prints_values_with_units(sdv: Sdv, server: ServerThread) -> None:
    result = sdv("get", "Vehicle.Speed", "Vehicle.VehicleIdentification.Brand", "--server", server.target)
    assert result.code == 0, result.stderr
    speed, brand = result.stdout.splitlines()
    assert re.fullmatch(r"Vehicle\.Speed = \d+(\.\d+)? km/h", speed)
    assert brand == "Vehicle.VehicleIdentification.Brand = SDV Demo"


def test_get_of_a_signal_without_value(sdv: Sdv, bare_server_thread: ServerThread) -> None:
    result = sdv("get", "Vehicle.Speed", "--server", bare_server_thread.target)
    assert (result.code, result.stdout) == (0, "Vehicle.Speed = (no value)\n")


def test_set_without_provider(sdv: Sdv, bare_server_thread: ServerThread) -> None:
    result = sdv("set", LOW_BEAM, "true", "--server", bare_server_thread.target)
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr == f"sdv set: {LOW_BEAM}: no provider is connected for this actuator\n"


def test_set_actuates_and_says_so(sdv: Sdv, server: ServerThread, can_observer: can.BusABC) -> None:
    result = sdv("set", LOW_BEAM, "on", "--server", server.target, "--observe", "0")
    assert result.code == 0, result.stderr
    assert result.stdout == f"{LOW_BEAM}: requested true: sent\n"
    assert [frame.arbitration_id for frame in received_frames(can_observer, 0.5)].count(0x300) == 1
    result = sdv("set", CABIN_TEMPERATURE, "22", "--server", server.target, "--observe", "0")
    assert result.stdout == f"{CABIN_TEMPERATURE}: requested 22: sent\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("get", "Vehicle.Sped"), "sdv get: unknown signal 'Vehicle.Sped'; did you mean Vehicle.Speed?"),
        (
            ("set", "Vehicle.Speed", "10"),
            "sdv set: Vehicle.Speed is a sensor; only actuators accept requests",
        ),
        (("set", LOW_BEAM, "maybe"), f"sdv set: {LOW_BEAM}: expected a boolean (true/false), got 'maybe'"),
        (("set", CABIN_TEMPERATURE, "35"), f"sdv set: {CABIN_TEMPERATURE}: 35 is above the maximum 30"),
        (("set", "Vehicle.Nope", "1"), "sdv set: no signal matches 'Vehicle.Nope'"),
        (
            ("subscribe", "Vehicle.Nope"),
            "sdv subscribe: unknown signal 'Vehicle.Nope'; did you mean Vehicle.Speed?",
        ),
        (("list", "Vehicle.Nope"), "sdv list: no signal matches 'Vehicle.Nope'"),
    ],
)
def test_refusals_are_one_line_on_stderr(
    sdv: Sdv, server: ServerThread, can_observer: can.BusABC, argv: tuple[str, ...], message: str
) -> None:
    result = sdv(*argv, "--server", server.target)
    assert (result.code, result.stdout, result.stderr) == (1, "", message + "\n")  # refused (docs/cli.md)
    assert received_frames(can_observer, 0.2) == []


@pytest.mark.parametrize(
    "command", [("get", "Vehicle.Speed"), ("set", LOW_BEAM, "1"), ("list",), ("monitor", "--once")]
)
def test_an_unreachable_server_is_named(sdv: Sdv, closed_port: int, command: tuple[str, ...]) -> None:
    result = sdv(*command, "--server", f"127.0.0.1:{closed_port}")
    assert result.code == 3 and result.stdout == ""  # unreachable (docs/cli.md)
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"sdv {command[0]}: cannot reach 127.0.0.1:{closed_port}: ")


def test_list_prints_a_table(sdv: Sdv, server: ServerThread) -> None:
    result = sdv("list", "Vehicle.Body.Lights.Beam", "--server", server.target)
    assert result.code == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["PATH", "KIND", "DATATYPE", "UNIT", "DESCRIPTION"]
    assert [row.split()[:4] for row in rows] == [
        [LOW_BEAM, "actuator", "boolean", "-"],
        ["Vehicle.Body.Lights.Beam.High.IsOn", "actuator", "boolean", "-"],
    ]
    assert rows[0].endswith("The low beam is on; a request switches it through the body controller.")


def test_list_without_root_lists_every_signal(
    sdv: Sdv, server: ServerThread, demo_vehicle: VehicleDefinition
) -> None:
    result = sdv("list", "--server", server.target)
    paths = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert paths[: len(demo_vehicle.signals)] == list(demo_vehicle.signals)
    speed = next(line for line in result.stdout.splitlines() if line.startswith("Vehicle.Speed "))
    assert speed.split()[1:4] == ["sensor", "float", "km/h"]
    assert "Sdv.Hal.Bus.vehicle.Frames" in paths


def test_monitor_once_shows_signals_and_hal_counters(sdv: Sdv, server: ServerThread) -> None:
    wait_until(  # at least one publication of the counters after frames arrived
        lambda: (server.broker.get("Sdv.Hal.Bus.vehicle.Decoded", access=UNRESTRICTED).value or 0) > 0,
        what="the HAL counters to count a decoded frame",
    )
    result = sdv("monitor", "--once", "--server", server.target)
    assert result.code == 0, result.stderr
    speed = next(line for line in result.stdout.splitlines() if "Vehicle.Speed " in line)
    cells = [cell.strip() for cell in speed.strip("│ \n").split("│")]
    assert cells[0] == "Vehicle.Speed" and cells[2] == "km/h" and cells[4] == "valid"
    assert re.fullmatch(r"\d+(\.\d+)?", cells[1]) and re.fullmatch(r"\d+\.\d+ s", cells[3])
    hal = next(line for line in result.stdout.splitlines() if line.startswith("HAL bus vehicle: "))
    match = re.fullmatch(
        r"HAL bus vehicle: UP; (\d+) Frames, (\d+) Decoded, (\d+) BadFrames, 0 Reconnects; (no errors|errors: .+)",
        hal,
    )
    assert match, hal
    frames, decoded, _ = (int(number) for number in match.groups()[:3])
    assert 0 < decoded <= frames


def test_monitor_screen_names_errors_and_signals_without_value() -> None:
    from rich.console import Console

    from sdv.cli.monitor_view import render_monitor
    from sdv.types.signals import Datapoint, SignalMetadata
    from sdv.types.status import Status

    def sensor(index: int, path: str, unit: str | None = None) -> SignalMetadata:
        return SignalMetadata(id=index, path=path, kind="sensor", datatype="uint64", unit=unit)

    counters = ["Frames", "Decoded", "BadFrames", "Errors.UnknownId", "Errors.E2eCounter"]
    metas = [sensor(1, "Vehicle.A", "km/h"), sensor(2, "Vehicle.B")]
    metas += [sensor(3 + index, f"Sdv.Hal.Bus.can0.{name}") for index, name in enumerate(counters)]
    values = {"Vehicle.B": Datapoint(None, 99.0, Status.NOT_AVAILABLE)}
    values |= {
        f"Sdv.Hal.Bus.can0.{name}": Datapoint(count, 99.0, Status.VALID)
        for name, count in zip(counters, [10, 7, 3, 0, 3], strict=True)
    }
    console = Console(width=100, record=True)
    console.print(render_monitor("title", metas, values, now=100.0))
    lines = console.export_text().splitlines()
    assert "HAL bus can0: 10 Frames, 7 Decoded, 3 BadFrames; errors: E2eCounter 3" in lines
    assert [
        cell.strip() for cell in next(line for line in lines if "Vehicle.A" in line).strip("│ ").split("│")
    ] == ["Vehicle.A", "", "km/h", "-", "no data"]
    assert [
        cell.strip() for cell in next(line for line in lines if "Vehicle.B" in line).strip("│ ").split("│")
    ] == ["Vehicle.B", "", "", "1.0 s", "unavailable"]


def test_monitor_screen_shows_a_bus_that_is_down() -> None:
    from rich.console import Console

    from sdv.cli.monitor_view import render_monitor
    from sdv.types.signals import Datapoint, SignalMetadata
    from sdv.types.status import Status

    rows = {
        "Frames": 10,
        "Decoded": 10,
        "BadFrames": 0,
        "State": "DOWN",
        "LastError": "bus body: cannot receive: device unplugged",
        "Reconnects": 2,
        "NextRetry": 104.0,
    }
    rows_up = {**rows, "State": "UP"}
    metas, values = [], {}
    for bus, signals in (("body", rows), ("chassis", rows_up)):
        for name, value in signals.items():
            path = f"Sdv.Hal.Bus.{bus}.{name}"
            metas.append(SignalMetadata(id=len(metas) + 1, path=path, kind="sensor", datatype="string"))
            values[path] = Datapoint(value, 99.0, Status.VALID)
    console = Console(width=200, record=True)
    console.print(render_monitor("title", metas, values, now=101.5))
    lines = console.export_text().splitlines()
    assert (
        "HAL bus body: DOWN: bus body: cannot receive: device unplugged, retrying in 2.5 s; "
        "10 Frames, 10 Decoded, 0 BadFrames, 2 Reconnects; no errors"
    ) in lines
    assert "HAL bus chassis: UP; 10 Frames, 10 Decoded, 0 BadFrames, 2 Reconnects; no errors" in lines


def test_monitor_once_shows_a_bus_that_is_down(sdv: Sdv, tmp_path: Path) -> None:
    from sdv.hal.runtime import Hal

    from ..hal.flaky_bus import FAST_RECONNECT, Plug, flaky_opener, two_bus_vehicle, wait_for

    vehicle = two_bus_vehicle(tmp_path)
    plug = Plug()
    plug.pull()
    hal = Hal(vehicle, openers={"vehicle": flaky_opener(vehicle, plug)}, config=FAST_RECONNECT)
    with ServerThread(vehicle, hal=hal, ready_when="Sdv.Hal.Bus.chassis.State") as server:
        result = sdv("monitor", "--once", "--server", server.target)
        plug.insert()
        wait_for(
            lambda: server.broker.get("Sdv.Hal.Bus.vehicle.State", access=UNRESTRICTED).value == "UP",
            "the bus back up",
        )
        after = sdv("monitor", "--once", "--server", server.target)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    down = next(line for line in lines if line.startswith("HAL bus vehicle: "))
    assert re.fullmatch(
        r"HAL bus vehicle: DOWN: no device on vehicle-\S+, retrying in 0\.\d s; 0 Frames, .*, 0 Reconnects; no errors",
        down,
    ), down
    assert next(line for line in lines if line.startswith("HAL bus chassis: ")).startswith(
        "HAL bus chassis: UP; "
    )
    low_beam = next(line for line in lines if f"{LOW_BEAM} " in line)
    assert low_beam.strip("│ ").split("│")[-1].strip() == "no data"
    up = next(line for line in after.stdout.splitlines() if line.startswith("HAL bus vehicle: "))
    assert up.startswith("HAL bus vehicle: UP; ") and up.endswith(", 1 Reconnects; no errors"), up


def test_subscribe_streams_until_interrupted_and_exits_0(server: ServerThread) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RUN_CLI,
            "subscribe",
            "Vehicle.AngularVelocity.Yaw",
            "--server",
            server.target,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPOSITORY,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert all(
        re.fullmatch(r"Vehicle\.AngularVelocity\.Yaw = -?\d+(\.\d+)? degrees/s\n", line) for line in lines
    )
    assert len({line for line in lines}) > 1  # the values change
    assert process.returncode == 0
    assert err == ""
