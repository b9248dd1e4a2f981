"""Output piped into a reader that stops early (``sdv ... | head -1``) ends quietly: no traceback, no
``BrokenPipeError``, for every command that can print more than a reader wants."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.serve_process import REPOSITORY, serving


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving() as (port, _process):
        yield f"127.0.0.1:{port}"


def _first_line_then_close(*argv: str) -> tuple[str, str, int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sdv.cli.main", *argv],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPOSITORY,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline()
    process.stdout.close()  # as head does after its lines
    errors = process.stderr.read()
    process.stderr.close()
    return line, errors, process.wait(60)


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--every", "0.01"],
        ["dbc", "check", "dbc/sdv_demo.dbc"],
        ["decode", "--profile", "hal/demo_vehicle.yaml", "--log", "hal/recordings/demo_drive.log.gz", "--format", "table"],
    ],
    ids=lambda argv: argv[0],
)  # fmt: skip
def test_local_commands_end_quietly(argv: list[str]) -> None:
    line, errors, code = _first_line_then_close(*argv)
    assert line
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors
    assert code in (0, 1)


@pytest.mark.parametrize(
    "argv",
    [
        ["subscribe", "Vehicle.Speed", "Vehicle.Acceleration.Longitudinal"],
        ["subscribe", "--json", "Vehicle.Speed", "Vehicle.Acceleration.Longitudinal"],
        ["list"],
        ["monitor", "--once"],
        [
            "get",
            "--json",
            "Vehicle.Speed",
            "Vehicle.Acceleration.Longitudinal",
            "Vehicle.Body.Trunk.Rear.IsOpen",
        ],
    ],
    ids=lambda argv: "-".join(argv[:2]),
)
def test_client_commands_end_quietly(server: str, argv: list[str]) -> None:
    line, errors, code = _first_line_then_close(*argv, "--server", server)
    assert line
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors
    assert code in (0, 1)
