"""The sdv entry point offers every command group users script against."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from sdv.cli.main import build_parser

COMMANDS = [
    "decode",
    "dbc",
    "profile",
    "demo",
    "serve",
    "get",
    "set",
    "subscribe",
    "list",
    "monitor",
    "codegen",
    "ota",
    "keys",
    "token",
    "pki",
    "federation",
]


def test_every_command_is_registered() -> None:
    actions = [action for action in build_parser()._actions if action.dest == "command"]
    assert set(actions[0].choices) == set(COMMANDS)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["get", "codegen", "ota"])
def test_installed_entry_point_runs_commands(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sdv.cli.main", command, "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "usage: sdv" in result.stdout


def test_unreachable_server_is_one_clear_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sdv.cli.main", "get", "Vehicle.Speed", "--server", "127.0.0.1:9"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
    assert "cannot reach 127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr


def test_output_piped_into_a_reader_that_stops_early_ends_quietly() -> None:
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "sdv.cli.main", "decode", "--dbc", "dbc/sdv_demo.dbc", "--log",
         "hal/recordings/demo_drive.log.gz"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline()
    process.stdout.close()  # as head does after its lines
    error = process.stderr.read()
    process.wait(60)
    process.stderr.close()
    assert "Traceback" not in error and "BrokenPipe" not in error, error


def test_each_command_is_mapped_to_the_group_that_registers_it() -> None:
    from sdv.cli.main import COMMAND_GROUPS, build_parser

    full = build_parser()
    commands = next(action for action in full._actions if isinstance(action, argparse._SubParsersAction))
    assert set(commands.choices) == set(COMMAND_GROUPS)
    for command, group in COMMAND_GROUPS.items():
        only = build_parser(command)
        chosen = next(action for action in only._actions if isinstance(action, argparse._SubParsersAction))
        assert command in chosen.choices, f"{command} is not registered by sdv.cli.{group}"


@pytest.mark.parametrize(
    "words",
    [
        ["get", "Vehicle.Speed"],
        ["set", "Vehicle.Speed", "1"],
        ["subscribe", "Vehicle.Speed"],
        ["list"],
        ["monitor"],
    ],
)
def test_a_client_command_loads_no_server_hal_or_ota_code(words: list[str]) -> None:
    heavy = ("cantools", "can", "yaml", "sdv.hal", "sdv.broker.broker", "sdv.api.server", "sdv.ota")
    probe = (
        "import sys\nfrom sdv.cli.main import build_parser\n"
        f"build_parser({words[0]!r}).parse_args({words!r})\n"
        f"heavy = {heavy!r}\n"
        "print(sorted(m for m in sys.modules if m in heavy or m.startswith(tuple(h + '.' for h in heavy))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"


def test_serve_says_what_it_serves_without_being_asked() -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", "sdv.cli.main", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert "listening on" in server.stdout.readline()  # the summary is logged before it listens
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=60)
    assert "INFO sdv.cli.serve_commands: serving profile sdv-demo" in errors
    assert "41 signals, 13 actuators, buses vehicle" in errors
