"""Agent configuration and ``sdv ota build`` errors in the one style: file, line, key path, what was expected;
relative command programs resolved against the configuration's folder as the docs say."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tests.ota.conftest import Ecu, run_cli

from sdv.cli.exit_codes import EXIT_USAGE
from sdv.ota.agent.config import load_agent_config


def _assert_located(err: str) -> None:
    assert "Traceback" not in err and "input_value" not in err and "https://" not in err, err
    assert "validation error" not in err and "[type=" not in err, err


def test_bad_fields_are_named_with_their_lines(ecu: Ecu) -> None:
    document = yaml.safe_load(ecu.config.read_text())
    document["hardware_id"] = "ecu a"
    document["transfer"]["max_chunk_bytez"] = 1
    document["slots"][0].pop("b")
    ecu.config.write_text(yaml.safe_dump(document, sort_keys=False))
    lines = ecu.config.read_text().splitlines()

    def line_of(text: str) -> int:
        return next(number for number, line in enumerate(lines, 1) if text in line)

    result = run_cli("ota", "agent", "--config", ecu.config, "--port", "0")
    assert result.code == EXIT_USAGE
    _assert_located(result.err)
    config = ecu.config
    assert f"{config}: line {line_of('hardware_id')}: hardware_id: 1 to 128 letters, digits" in result.err
    assert (
        f"{config}: line {line_of('max_chunk_bytez')}: transfer.max_chunk_bytez: unknown field" in result.err
    )
    assert f"{config}: line {line_of('- a: ')}: slots[0].b: required field is missing" in result.err
    assert not ecu.state_dir.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("state_dir: [unclosed\n", "line 2, column 1: not valid YAML"),
        ("- a list\n", "(top level): expected a mapping of settings"),
    ],
)
def test_a_file_that_is_no_configuration_is_named(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(text)
    result = run_cli("ota", "status", "--config", config)
    assert result.code == EXIT_USAGE
    assert f"{config}: {message}" in result.err
    _assert_located(result.err)


def test_a_relative_health_check_program_is_resolved_against_the_configuration(ecu: Ecu) -> None:
    ecu.write_config(
        health_check={"command": ["./checks/health.sh", "--quick"]},
        reboot_command=["systemctl", "reboot"],
    )
    config = load_agent_config(ecu.config)
    assert config.health_check is not None
    assert config.health_check.command == [str(ecu.root / "checks" / "health.sh"), "--quick"]
    assert config.reboot_command == ["systemctl", "reboot"]  # a bare name is looked up on PATH


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--version", "1.0", "argument --version: '1.0': a semantic version such as 1.4.0 expected"),
        ("--name", "my bundle", "argument --name: 'my bundle': 1 to 128 letters, digits and . _ + -"),
    ],
)
def test_ota_build_names_the_flag_and_the_form_expected(
    tmp_path: Path, flag: str, value: str, expected: str
) -> None:
    payload = tmp_path / "app.tar"
    payload.write_bytes(b"payload")
    arguments = {"--name": "infotainment", "--version": "1.4.0", flag: value}
    result = run_cli(
        "ota", "build", *[part for pair in arguments.items() for part in pair], "--release-counter", "1",
        "--hardware-id", "ecu-a", "--payload", payload, "-o", tmp_path / "b.sdvota",
    )  # fmt: skip
    assert result.code == EXIT_USAGE
    assert expected in result.err
    assert "^(0|" not in result.err  # no regular expression
    assert not (tmp_path / "b.sdvota").exists()
