"""Fuzzing the profile loader with mutations of the demo profile: only ProfileError (or a vehicle) comes out."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import given

from sdv.errors import ProfileError
from sdv.hal.vehicle import load_vehicle
from sdv.resources import demo_dbc, demo_profile, demo_recording
from tests.fuzz.harness import Examples, fuzz_settings, memory_bounded, mutated, run_budget


@pytest.fixture(scope="module")
def profile_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the demo vehicle's layout, so that the profile's relative paths resolve."""
    root = tmp_path_factory.mktemp("fuzz-profile")
    (root / "dbc").mkdir()
    (root / "hal" / "recordings").mkdir(parents=True)
    shutil.copy(demo_dbc(), root / "dbc" / demo_dbc().name)
    shutil.copy(demo_recording(), root / "hal" / "recordings" / demo_recording().name)
    return root / "hal"


@pytest.mark.parametrize("suffix", [".yaml", ".toml"])
def test_mutated_profiles_load_or_are_refused(profile_directory: Path, suffix: str) -> None:
    seeds = [demo_profile().read_bytes()]
    if suffix == ".toml":
        seeds = [_as_toml(profile_directory)]
    path = profile_directory / f"mutated{suffix}"

    examples = Examples()

    @fuzz_settings()
    @given(mutated(seeds))
    def load(data: bytes) -> None:
        examples()
        path.write_bytes(data)
        try:
            load_vehicle(path)
        except ProfileError as error:
            assert any(problem.file == str(path) for problem in error.problems)  # DBC problems follow

    with memory_bounded():
        run_budget(f"profile {suffix}", load, examples)


def _as_toml(directory: Path) -> bytes:
    """The demo profile's buses and first signals as TOML (strings, numbers, lists and inline tables)."""
    import yaml

    data = yaml.safe_load(demo_profile().read_text())
    lines = [f"name = {_toml_value(data['name'])}"]
    for table, entries in (("buses", data["buses"]), ("signals", data["signals"][:6])):
        for entry in entries:
            lines.append(f"[[{table}]]")
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in entry.items())
    text = "\n".join(lines) + "\n"
    (directory / "seed.toml").write_text(text)
    load_vehicle(directory / "seed.toml")  # the seed itself is valid
    return text.encode()


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml_value(item)}" for key, item in value.items()) + " }"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
