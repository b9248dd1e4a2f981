"""The profile's ``hal:`` section: how the HAL runs the buses, overridden by ``sdv serve --decode-workers``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sdv.errors import ProfileError
from sdv.hal.config import HalConfig
from sdv.hal.runtime import Hal
from sdv.hal.vehicle import load_vehicle
from sdv.resources import demo_dbc

from ..serve_process import SERVE, serving
from .test_workers import final_values, played_once, workers_of

SPEED = "Vehicle.Speed"


def with_hal_section(tmp_path: Path, section: str) -> Path:
    """The demo drive played once, with ``section`` (YAML text) as its ``hal:`` section."""
    profile = played_once(tmp_path)
    profile.write_text(profile.read_text() + f"hal:\n{section}")
    return profile


def test_a_hal_built_from_the_profile_runs_with_its_hal_section(tmp_path: Path) -> None:
    profile = with_hal_section(tmp_path, "  receive_timeout_s: 0.2\n  reconnect: {initial_delay_s: 1.5}\n")
    hal = Hal(profile)
    assert hal.config.receive_timeout_s == 0.2
    assert hal.config.reconnect.initial_delay_s == 1.5
    assert hal.config.decode_workers == 0  # left out: the model's default
    (tmp_path / "plain").mkdir()
    assert Hal(played_once(tmp_path / "plain")).config == HalConfig()  # no section: every default
    assert Hal(profile, config=HalConfig()).config == HalConfig()  # a config given in code wins


def test_the_profiles_decode_workers_run_a_worker(tmp_path: Path) -> None:
    profile = with_hal_section(tmp_path, "  decode_workers: 1\n")
    with serving("--profile", str(profile)) as (port, process):
        assert len(workers_of(process.pid)) == 1
        values = final_values(port, [SPEED])
    assert values[SPEED] is not None


def test_decode_workers_on_the_command_line_override_the_profile(tmp_path: Path) -> None:
    profile = with_hal_section(tmp_path, "  decode_workers: 1\n")
    with serving("--profile", str(profile), "--decode-workers", "0") as (port, process):
        values = final_values(port, [SPEED])  # the whole drive decoded, without a worker all along
        assert workers_of(process.pid) == []
    assert values[SPEED] is not None


@pytest.mark.parametrize(
    ("section", "line", "field", "expected"),
    [
        (
            {"decode_workers": -1},
            8,
            "hal.decode_workers",
            "expected a number of processes (0 or more) or auto",
        ),
        (
            {"decode_workers": "many"},
            8,
            "hal.decode_workers",
            "expected a number of processes (0 or more) or auto",
        ),
        (
            {"decode_workers": True},
            8,
            "hal.decode_workers",
            "expected a number of processes (0 or more) or auto",
        ),
        ({"workers": 2}, 8, "hal.workers", "unknown field"),
        ({"batch_window_s": "soon"}, 8, "hal.batch_window_s", "valid number"),
        ({"batch_window_s": 2}, 8, "hal.batch_window_s", "less than or equal to 1"),
        ({"reconnect": {"factor": 0}}, 9, "hal.reconnect.factor", "greater than or equal to 1"),
    ],
)
def test_a_bad_hal_section_is_refused_with_file_line_and_field(
    tmp_path: Path, section: dict[str, object], line: int, field: str, expected: str
) -> None:
    profile = tmp_path / "bad.yaml"
    bus = {"name": "vehicle", "interface": "virtual", "channel": "bad", "dbc": [str(demo_dbc())]}
    profile.write_text(yaml.safe_dump({"buses": [bus], "hal": section}, sort_keys=False))
    done = subprocess.run(
        [sys.executable, *SERVE, "--port", "0", "--profile", str(profile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    # One problem, under the summary line every profile error of serve starts with
    summary, message = done.stderr.splitlines()
    assert summary == "sdv serve: 1 problem:"
    assert message.startswith(f"  {profile}: line {line}: {field}: "), message
    assert expected in message
    assert "Traceback" not in done.stderr
    with pytest.raises(ProfileError, match=field.replace(".", r"\.")):
        load_vehicle(profile)  # the same problem for every user of the profile, not only serve
