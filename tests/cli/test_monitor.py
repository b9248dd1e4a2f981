"""``sdv monitor``: the screen as text (pure functions, no terminal), then ``--once`` against a real server."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from rich.console import Console

from sdv.cli.monitor_commands import parse_keys
from sdv.cli.monitor_view import MonitorView, render_monitor, shorten_path, shorten_paths, sort_rows
from sdv.types.signals import Datapoint, SignalMetadata
from sdv.types.status import Status
from tests.serve_process import serving
from tests.test_cli_exit_codes import run
from tests.vss_files import vss_release
from tests.waiting import wait_until

DOORS = [
    f"Vehicle.Cabin.Door.Row{row}.{side}.IsOpen" for row in (1, 2) for side in ("DriverSide", "PassengerSide")
]
LIGHTS = [f"Vehicle.Body.Lights.DirectionIndicator.{side}.IsSignaling" for side in ("Left", "Right")]


def sensor(path: str, index: int = 0, unit: str | None = None) -> SignalMetadata:
    return SignalMetadata(id=index, path=path, kind="sensor", datatype="boolean", unit=unit)


def screen(
    metas: list[SignalMetadata], values: dict[str, Datapoint], width: int, **options: object
) -> list[str]:
    console = Console(width=width, record=True)
    console.print(render_monitor("title", metas, values, 100.0, width=width, **options))  # type: ignore[arg-type]
    return console.export_text().splitlines()


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip("│ ").split("│")]


# --- paths -----------------------------------------------------------------------------------------------------
def test_a_path_that_fits_is_kept() -> None:
    assert shorten_path("Vehicle.Speed", 13) == "Vehicle.Speed"


@pytest.mark.parametrize("width", [30, 24, 20, 16])
def test_paths_are_shortened_in_the_middle_and_stay_distinct(width: int) -> None:
    short = shorten_paths([*DOORS, *LIGHTS], width)
    assert len(set(short.values())) == len(short), short
    for path, text in short.items():
        assert len(text) <= width, text
        assert text.endswith(path.rsplit(".", 1)[-1][-(width - 2) :]), text  # the leaf, or as much as fits


def test_branches_are_abbreviated_from_the_root_and_the_leaf_stays_whole() -> None:
    assert shorten_path("Vehicle.Cabin.Door.Row1.DriverSide.IsOpen", 34) == "V.C.Door.Row1.DriverSide.IsOpen"
    assert shorten_path("Vehicle.Cabin.Door.Row1.DriverSide.IsOpen", 20) == "V.C.D.R1.DS.IsOpen"
    assert shorten_path("Vehicle.Cabin.HVAC.IsAirConditioningActive", 28) == "V.….IsAirConditioningActive"
    assert shorten_path("Vehicle.Cabin.HVAC.IsAirConditioningActive", 12) == "…oningActive"


def test_paths_that_would_read_alike_keep_more_of_their_branches() -> None:
    paths = ["Vehicle.Cabin.Seat.Heating", "Vehicle.Chassis.Seat.Heating"]
    assert shorten_path(paths[0], 18) == shorten_path(paths[1], 18) == "V.C.Seat.Heating"
    short = shorten_paths(paths, 18)
    assert len(set(short.values())) == 2 and all(len(text) <= 18 for text in short.values()), short


# --- rows, pages and keys --------------------------------------------------------------------------------------
VALUES = {
    "Vehicle.A": Datapoint(True, 99.0, Status.VALID),
    "Vehicle.B": Datapoint(None, 98.0, Status.NOT_AVAILABLE),
    "Vehicle.C": Datapoint(False, 99.5, Status.VALID),
}
ROWS = [sensor(path) for path in ("Vehicle.D", "Vehicle.C", "Vehicle.B", "Vehicle.A")]  # D: no data


@pytest.mark.parametrize(
    ("key", "order"),
    [
        ("path", ["Vehicle.A", "Vehicle.B", "Vehicle.C", "Vehicle.D"]),
        ("age", ["Vehicle.C", "Vehicle.A", "Vehicle.B", "Vehicle.D"]),
        ("status", ["Vehicle.A", "Vehicle.C", "Vehicle.B", "Vehicle.D"]),
    ],
)
def test_rows_sort_by_path_age_or_status(key: str, order: list[str]) -> None:
    assert [meta.path for meta in sort_rows(ROWS, VALUES, key)] == order  # type: ignore[arg-type]


def test_keys_scroll_within_the_rows_and_cycle_the_sort() -> None:
    view = MonitorView(rows=10)
    assert view.after_key("down", 25).first == 1
    assert view.after_key("up", 25).first == 0  # not above the first row
    assert view.after_key("pagedown", 25).after_key(" ", 25).first == 15  # the last page is full
    assert view.after_key("end", 25).first == 15
    assert view.after_key("end", 25).after_key("home", 25).first == 0
    assert view.after_key("end", 25).after_key("b", 25).first == 5
    assert view.after_key("x", 25) == view
    assert [view.after_key("s", 25).sort, view.after_key("s", 25).after_key("s", 25).sort] == [
        "age",
        "status",
    ]
    assert view.after_key("j", 25).after_key("s", 25).first == 0  # a new order starts at the top
    assert MonitorView(rows=10).after_key("down", 4).first == 0  # everything fits: nothing to scroll


def test_terminal_keys_are_read_from_their_escape_sequences() -> None:
    assert parse_keys("\x1b[A\x1b[B\x1b[5~\x1b[6~\x1b[H\x1b[F\x1b[1~\x1b[4~") == [
        "up", "down", "pageup", "pagedown", "home", "end", "home", "end",
    ]  # fmt: skip
    assert parse_keys("jk\x1b[2~s q") == ["j", "k", "s", " ", "q"]  # Insert (unused) is dropped


def test_the_screen_shows_one_page_and_says_which() -> None:
    metas = [sensor(f"Vehicle.Signal{index:02d}", index) for index in range(30)]
    lines = screen(metas, {}, 80, view=MonitorView(first=10, rows=5), keys=True)
    shown = [cells(line)[0] for line in lines if line.startswith("│")]
    assert shown == [f"Vehicle.Signal{index:02d}" for index in range(10, 15)]
    assert lines[-1] == "rows 11-15 of 30, by path; ↑↓ PgUp PgDn Home End to scroll, s to sort, q to quit"


def test_each_bus_is_one_row_with_its_errors_at_80_columns() -> None:
    counters = {"State": "UP", "Frames": 123456, "Decoded": 123000, "BadFrames": 456, "Reconnects": 3}
    counters |= {"Errors.UnknownId": 400, "Errors.E2eCounter": 56}
    metas, values = [], {}
    for bus in ("powertrain", "body"):
        for name, value in counters.items():
            path = f"Sdv.Hal.Bus.{bus}.{name}"
            metas.append(sensor(path, len(metas)))
            values[path] = Datapoint(value, 99.0, Status.VALID)
    lines = screen([*metas, *(sensor(path) for path in DOORS)], values, 80)
    buses = [line for line in lines if line.startswith("HAL bus ")]
    assert [line.split(":")[0] for line in buses] == ["HAL bus powertrain", "HAL bus body"]
    assert all(
        line.startswith(f"{line.split(';')[0]}; errors: UnknownId 400, E2eCounter 56") for line in buses
    )
    assert all(len(line) <= 80 for line in lines), lines
    assert not any(
        line.startswith(("123", "Frames")) for line in lines
    )  # no bus line wrapped onto a second row


# --- against a real server -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """``sdv serve`` of the demo vehicle with the whole VSS 4.0 catalogue: most signals have no data."""
    catalogue = ("--vss", str(vss_release("4.0")), "--vss", "hal/vss_sdv_overlay.json")
    with serving("--profile", "hal/demo_vehicle.yaml", *catalogue) as (port, _):
        address = f"127.0.0.1:{port}"
        wait_until(
            lambda: "(no value)" not in run("get", DOORS[0], "--server", address).out,
            what="the replayed drive's first door status",
        )
        yield address


def test_monitor_once_shows_the_signals_under_a_root(server: str) -> None:
    result = run("monitor", "--once", "Vehicle.Cabin.Door", "--width", "80", "--server", server)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    rows = [cells(line) for line in lines if line.startswith("│")]
    assert rows and all(row[0].startswith(("V.C.D", "Vehicle.Cabin.Door.")) for row in rows), rows
    assert len({row[0] for row in rows}) == len(rows)  # no two rows read alike
    assert any(row[-1] == "valid" for row in rows)  # the demo's four doors
    assert [line for line in lines if line.startswith("HAL bus ")] == [
        next(line for line in lines if line.startswith("HAL bus vehicle: UP; "))
    ]
    assert all(len(line) <= 80 for line in lines), lines


def test_monitor_once_pages_through_a_large_catalogue_sorted_by_status(server: str) -> None:
    first = run("monitor", "--once", "--sort", "status", "--rows", "10", "--page", "1", "--server", server)
    second = run("monitor", "--once", "--sort", "status", "--rows", "10", "--page", "2", "--server", server)
    assert first.code == second.code == 0, first.err + second.err
    footer = re.fullmatch(r"rows 1-10 of (\d+), by status", first.out.splitlines()[-1])
    assert footer and int(footer[1]) > 300, first.out.splitlines()[-1]
    assert second.out.splitlines()[-1] == f"rows 11-20 of {footer[1]}, by status"
    statuses = [cells(line)[-1] for line in first.out.splitlines() if line.startswith("│")]
    assert statuses == ["valid"] * 10  # the signals with data lead, though most of the catalogue has none


def test_monitor_refuses_a_page_that_is_not_a_number(server: str) -> None:
    result = run("monitor", "--once", "--page", "0", "--server", server)
    assert result.code == 2 and "'0' is not a whole number of 1 or more" in result.err, result.err
