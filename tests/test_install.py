"""The install paths: ``make serve`` installs only the runtime, ``make test`` the toolchain too, and the shipped
systemd units start commands the ``sdv`` parser accepts, with their hardening options."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sdv.cli.main import build_parser
from tests.serve_process import REPOSITORY

UNITS = REPOSITORY / "systemd"


def _make_dry_run(target: str, venv: Path) -> list[str]:
    done = subprocess.run(
        ["make", "-n", target, f"VENV={venv}"], capture_output=True, text=True, cwd=REPOSITORY, check=True
    )
    return [
        line for line in done.stdout.splitlines() if "pip install" in line and "--upgrade pip" not in line
    ]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_serve_installs_only_the_runtime(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    assert _make_dry_run("serve", venv) == [f"{venv}/bin/python -m pip install --quiet -e ."]
    assert _make_dry_run("demo", venv) == [f"{venv}/bin/python -m pip install --quiet -e ."]
    toolchain = _make_dry_run("test", venv)
    assert toolchain[-1] == f"{venv}/bin/python -m pip install --quiet -e '.[test]'"


def _unit(name: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((UNITS / name).read_text().replace("\\\n", " "))
    return parser["Service"]


@pytest.mark.parametrize(
    ("unit", "command"),
    [("sdv-serve.service", ["serve"]), ("sdv-ota-agent.service", ["ota", "agent"])],
)
def test_units_start_a_command_the_parser_accepts_with_hardening(unit: str, command: list[str]) -> None:
    service = _unit(unit)
    program, *arguments = shlex.split(service["ExecStart"])
    assert program == "/opt/sdv/bin/sdv" and arguments[: len(command)] == command
    parsed = build_parser().parse_args(arguments)
    assert parsed.handler is not None
    for option, value in {"NoNewPrivileges": "yes", "ProtectHome": "yes", "PrivateTmp": "yes"}.items():
        assert service[option] == value, option
    assert service["ProtectSystem"] == "strict" and service["Restart"] == "on-failure"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    sdv = Path(sys.executable).with_name("sdv")
    for unit in UNITS.glob("*.service"):
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/sdv/bin/sdv", str(sdv)))
    done = subprocess.run(
        ["systemd-analyze", "verify", *sorted(str(path) for path in tmp_path.glob("*.service"))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
