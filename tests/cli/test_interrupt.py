"""Ctrl-C while a command is still starting ends it with one line and exit code 130, never a traceback.

The interrupt is delivered exactly where it hurts: a ``sitecustomize`` module (loaded by the interpreter before
``sdv``) installs an import hook that raises ``KeyboardInterrupt`` when a chosen module is imported, as a Ctrl-C
arriving during that import would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serve_process import REPOSITORY
from tests.waiting import DEADLINE_S

_SITECUSTOMIZE = """
import sys


class _InterruptOnImport:
    def find_spec(self, fullname, path=None, target=None):
        if fullname == {module!r}:
            raise KeyboardInterrupt
        return None


sys.meta_path.insert(0, _InterruptOnImport())
"""


@pytest.mark.parametrize(
    ("module", "argv"),
    [
        (
            "argparse",
            ["get", "Vehicle.Speed", "--server", "127.0.0.1:9"],
        ),  # the entry point's own first import
        ("logging", ["get", "Vehicle.Speed", "--server", "127.0.0.1:9"]),
        (
            "sdv.cli.client_commands",
            ["get", "Vehicle.Speed", "--server", "127.0.0.1:9"],
        ),  # the command's group
        ("grpc", ["get", "Vehicle.Speed", "--server", "127.0.0.1:9"]),  # the group's dependencies
        ("sdv.cli.ota_commands", ["ota", "status"]),
        ("sdv.cli.hal_commands", ["--help"]),
        ("sdv.broker", ["serve", "--port", "0"]),
        ("cantools", ["dbc", "check", str(REPOSITORY / "dbc" / "sdv_demo.dbc")]),
    ],
)
def test_interrupt_during_start_up_is_one_line_and_exit_130(
    tmp_path: Path, module: str, argv: list[str]
) -> None:
    (tmp_path / "sitecustomize.py").write_text(_SITECUSTOMIZE.format(module=module))
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPOSITORY / "src")])}
    result = subprocess.run(
        [sys.executable, "-m", "sdv.cli.main", *argv],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=DEADLINE_S,
        check=False,
    )
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith(": interrupted"), result.stderr
    assert result.stdout == ""
