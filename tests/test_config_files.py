"""Hostile configuration files: profile, limits and agent configuration are bounded before they are parsed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sdv.broker import Limits
from sdv.cli.settings import load_settings
from sdv.config_files import MAX_CONFIG_BYTES, MAX_NESTING, parse_yaml
from sdv.errors import SdvError
from sdv.hal.profile import load_profile_config
from sdv.ota.agent.config import load_agent_config
from tests.bounded_process import sdv_bounded

PROFILE_HEAD = "name: hostile\nbuses:\n  - {name: body, interface: virtual, channel: body, dbc: []}\n"


@dataclass(frozen=True)
class Hostile:
    id: str
    content: bytes
    says: tuple[str, ...]


HOSTILE = [
    Hostile(
        "byte_not_utf8",
        PROFILE_HEAD.encode() + b"description: caf\xe9\n",
        ("line 4", "byte 0xE9 at byte offset", "UTF-8 expected"),
    ),
    Hostile(
        "integer_of_5000_digits",
        PROFILE_HEAD.encode() + b"freshness: {timeout_multiple: " + b"9" * 5000 + b"}\n",
        ("line 4", "an integer of 5000 characters", "expected at most 100 digits"),
    ),
    Hostile(
        "negative_integer_of_5000_digits",
        PROFILE_HEAD.encode() + b"x: -" + b"1" * 5000 + b"\n",
        ("line 4", "an integer of 5001 characters"),
    ),
    Hostile(
        "nested_100000_levels",
        PROFILE_HEAD.encode() + b"x: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
        ("line 4", f"expected at most {MAX_NESTING} levels"),
    ),
    Hostile(
        "key_given_twice",
        PROFILE_HEAD.encode() + b"limits:\n  max: 300\n  max: 30\n",
        ("line 6", "key 'max' is given twice (first on line 5)"),
    ),
    Hostile(
        "larger_than_the_bound",
        PROFILE_HEAD.encode() + b"# " + b"x" * MAX_CONFIG_BYTES + b"\n",
        (f"larger than {MAX_CONFIG_BYTES} bytes",),
    ),
]

Reader = Callable[[Path], object]
READERS: dict[str, tuple[Reader, str]] = {
    "profile": (load_profile_config, "profile.yaml"),
    "limits": (lambda path: load_settings(path, Limits), "limits.yaml"),
    "agent_config": (load_agent_config, "agent.yaml"),
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("case", HOSTILE, ids=[case.id for case in HOSTILE])
def test_hostile_file_is_one_located_problem(tmp_path: Path, case: Hostile, reader: str) -> None:
    read, name = READERS[reader]
    path = tmp_path / name
    content = case.content
    if case.id == "larger_than_the_bound" and reader == "limits":
        content = content[: 2 * 1024 * 1024]  # the limits file has a tighter bound; still past it
    path.write_bytes(content)
    with pytest.raises(SdvError) as raised:
        read(path)
    message = str(raised.value)
    assert f"{path}: " in message
    problem_lines = [line for line in message.splitlines() if str(path) in line]
    assert len(problem_lines) == 1, message
    if case.id == "larger_than_the_bound" and reader == "limits":
        assert "larger than 1048576 bytes" in problem_lines[0]
    else:
        for part in case.says:
            assert part in problem_lines[0], problem_lines[0]


def test_long_numbers_that_are_no_integers_are_not_refused() -> None:
    data, _ = parse_yaml(f'quoted: "{"1" * 5000}"\nfloat: {"1" * 5000}.5\nwords: 1 {"2" * 5000}\n', "x.yaml")
    assert data == {"quoted": "1" * 5000, "float": float("inf"), "words": "1 " + "2" * 5000}


def test_toml_integer_of_5000_digits_is_a_syntax_problem(tmp_path: Path) -> None:
    path = tmp_path / "limits.toml"
    path.write_text("max_subscriptions = " + "1" * 5000 + "\n")
    with pytest.raises(SdvError, match=r"limits\.toml: syntax: not valid TOML: Exceeds the limit"):
        load_settings(path, Limits)


def test_toml_nested_too_deeply_is_a_syntax_problem(tmp_path: Path) -> None:
    path = tmp_path / "profile.toml"
    path.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(SdvError, match=r"profile\.toml: syntax: not valid TOML: nested too deeply"):
        load_profile_config(path)


@pytest.mark.parametrize("case", HOSTILE, ids=[case.id for case in HOSTILE])
def test_profile_check_of_a_hostile_profile_within_fixed_memory(tmp_path: Path, case: Hostile) -> None:
    path = tmp_path / "profile.yaml"
    path.write_bytes(case.content)
    result = sdv_bounded("profile", "check", str(path))
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stderr  # 1: the profile is refused
    (problem,) = [line for line in result.stderr.splitlines() if line.startswith(f"  {path}: ")]
    for part in case.says:
        assert part in problem, problem
