"""The sdv entry point offers every command group users script against."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sdv.cli.main import build_parser

COMMANDS = [
    "decode",
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
