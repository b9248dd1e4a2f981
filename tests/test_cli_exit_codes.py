"""Every command with its documented bad inputs ends with one clear message and the documented exit code
(docs/cli.md): 2 the command cannot run as given, 1 the request was refused, 3 the server cannot be talked to."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sdv.cli.exit_codes import EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE
from sdv.cli.main import main
from tests.serve_process import REPOSITORY, serving

DEMO_DBC = str(REPOSITORY / "dbc" / "sdv_demo.dbc")
MISSING = "/nonexistent-sdv-input"
UNREACHABLE = "127.0.0.1:9"  # the discard port: nothing listens there


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def run(*argv: str) -> Result:
    """``sdv ARGV`` in-process, with its exit code and output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse's usage errors
            code = int(exit_.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


def assert_one_clear_line(result: Result, code: int, message: str, *, lines: int = 1) -> None:
    assert result.code == code, result.err
    assert "Traceback" not in result.err, result.err
    assert message in result.err, result.err
    assert len(result.err.strip().splitlines()) <= lines, result.err


USAGE_ERRORS = [
    (["get", "Vehicle.Speed", "--server", "ftp://ecu:55555"], "scheme 'ftp' is not supported"),
    (["get", "Vehicle.Speed", "--server", "ecu:0"], "port '0' is not a TCP port (1 to 65535)"),
    (["get", "Vehicle.Speed", "--server", "ecu:55555/val"], "expected HOST, HOST:PORT, grpc://HOST:PORT"),
    (
        ["set", "Vehicle.Speed", "1", "--server", "grpc://127.0.0.1:9", "--tls"],
        "grpc:// address is plaintext",
    ),
    (["subscribe", "Vehicle.Speed", "--server", "https://ecu"], "scheme 'https' is not supported"),
    (["list", "--server", ":55555"], "no host"),
    (["monitor", "--once", "--server", "ecu:http"], "port 'http' is not a TCP port"),
    (["decode", "--dbc", DEMO_DBC, "--log", MISSING + ".log"], f"recording {MISSING}.log: cannot be read"),
    (["serve", "--port", "70000"], "--port 70000 is not a TCP port"),
    (["ota", "push", MISSING, "--target", UNREACHABLE], f"{MISSING}: cannot read bundle"),
    (["ota", "inspect", MISSING], f"{MISSING}: cannot read bundle or trust file"),
    (["ota", "sign", MISSING, "--key", MISSING], f"{MISSING}: cannot read private key"),
    (["ota", "status", "--target", "ecu:99999"], "port '99999' is not a TCP port"),
    (
        ["ota", "verify", MISSING, "--trust", MISSING, "--hardware-id", "ecu"],
        f"{MISSING}: cannot read trust root",
    ),
    (["keys", "generate", "--private", f"{MISSING}/a.pem", "--public", f"{MISSING}/a.pub"], "cannot write"),
    (["token", "create", "--private-key", MISSING, "--scope", "read:Vehicle"], "cannot read private key"),
    (["pki", "issue", "--dir", MISSING, "--server", "ecu"], f"CA certificate {MISSING}/ca.crt"),
]

# Errors of the project's problem lists: a count, then one line per problem.
PROBLEM_ERRORS = [
    (["decode", "--dbc", MISSING, "--log", MISSING], f"{MISSING}: file: cannot read the file"),
    (["profile", "init", "--dbc", MISSING], f"{MISSING}: file: cannot read the file"),
    (["serve", "--profile", MISSING, "--port", "0"], f"{MISSING}: file: cannot be read"),
    (["codegen", "--profile", MISSING, "-o", MISSING], f"{MISSING}: file: cannot be read"),
    (["ota", "agent", "--config", MISSING], f"{MISSING}: file: cannot be read"),
]


@pytest.mark.parametrize(
    ("argv", "message"), USAGE_ERRORS, ids=[" ".join(row[0][:2]) for row in USAGE_ERRORS]
)
def test_a_command_that_cannot_run_as_given_exits_2(argv: list[str], message: str) -> None:
    assert_one_clear_line(run(*argv), EXIT_USAGE, message)


@pytest.mark.parametrize(
    ("argv", "message"), PROBLEM_ERRORS, ids=[" ".join(row[0][:2]) for row in PROBLEM_ERRORS]
)
def test_an_unreadable_input_file_exits_2_with_its_problems(argv: list[str], message: str) -> None:
    assert_one_clear_line(run(*argv), EXIT_USAGE, message, lines=2)


@pytest.mark.parametrize(
    "argv",
    [
        ["get", "Vehicle.Speed"],
        ["set", "Vehicle.Body.Lights.Beam.Low.IsOn", "true"],
        ["subscribe", "Vehicle.Speed"],
        ["list"],
        ["monitor", "--once"],
    ],
    ids=lambda argv: argv[0],
)
def test_a_signal_server_that_cannot_be_reached_exits_3(argv: list[str]) -> None:
    result = run(*argv, "--server", UNREACHABLE)
    assert_one_clear_line(result, EXIT_UNREACHABLE, f"sdv {argv[0]}: cannot reach {UNREACHABLE}")


@pytest.mark.parametrize(
    "argv",
    [
        ["ota", "status", "--target", UNREACHABLE],
        ["ota", "activate", "--target", UNREACHABLE],
        ["ota", "report", "--agent", UNREACHABLE],
        ["ota", "trust", "update", MISSING, "--target", UNREACHABLE],
    ],
    ids=lambda argv: argv[1],
)
def test_an_update_agent_that_cannot_be_reached_exits_3(argv: list[str], tmp_path: Path) -> None:
    if argv[1] == "trust":  # the new root must be readable before the agent is asked
        root = tmp_path / "root.json"
        root.write_text("{}")
        argv = [str(root) if part == MISSING else part for part in argv]
    result = run(*argv)
    assert_one_clear_line(result, EXIT_UNREACHABLE, f"cannot reach the update agent at {UNREACHABLE}")


def test_a_malformed_trust_file_exits_2_as_docs_ota_says(tmp_path: Path) -> None:
    trust, bundle = tmp_path / "trust.json", tmp_path / "b.sdvota"
    trust.write_text('{"signed": 1}')
    bundle.write_bytes(b"not a bundle")
    result = run("ota", "verify", str(bundle), "--trust", str(trust), "--hardware-id", "ecu")
    assert_one_clear_line(result, EXIT_USAGE, f"sdv ota verify: {trust}: trust root: signed:")


def test_an_address_without_port_gets_the_default_port_of_its_service() -> None:
    # 127.0.0.77 is a loopback address no test server binds: the message shows the port that was dialled
    assert_one_clear_line(
        run("get", "Vehicle.Speed", "--server", "127.0.0.77"),
        EXIT_UNREACHABLE,
        "cannot reach 127.0.0.77:55555",
    )
    assert_one_clear_line(
        run("ota", "status", "--target", "grpc://127.0.0.77"),
        EXIT_UNREACHABLE,
        "cannot reach the update agent at 127.0.0.77:55556",
    )


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving() as (port, _process):
        yield f"127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["get", "Vehicle.Nope"], "Vehicle.Nope"),
        (["list", "Vehicle.Nope"], "Vehicle.Nope"),
        (["set", "Vehicle.Speed", "10"], "Vehicle.Speed"),
        (["set", "Vehicle.Body.Lights.Beam.Low.IsOn", "maybe"], "Vehicle.Body.Lights.Beam.Low.IsOn"),
        (["subscribe", "Vehicle.Nope"], "Vehicle.Nope"),
        (
            ["get", "--target", "Vehicle.Speed"],
            "Vehicle.Speed is a sensor; only actuators have a target value",
        ),
        (["get", "--target", "Vehicle.Nope"], "Vehicle.Nope"),
        (["monitor", "--once", "Vehicle.Nope"], "Vehicle.Nope"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_a_request_the_server_refuses_exits_1(server: str, argv: list[str], message: str) -> None:
    result = run(*argv, "--server", server)
    assert_one_clear_line(result, EXIT_FAILED, message)
    assert not result.out


def test_grpc_scheme_and_environment_name_the_server(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("get", "Vehicle.Speed", "--server", f"grpc://{server}").code == 0
    monkeypatch.setenv("SDV_SERVER", f"grpc://{server}")
    result = run("get", "Vehicle.Speed")
    assert result.code == 0, result.err
    assert result.out.startswith("Vehicle.Speed = ")
    monkeypatch.setenv("SDV_TOKEN_FILE", MISSING)
    assert_one_clear_line(run("get", "Vehicle.Speed"), EXIT_USAGE, f"$SDV_TOKEN_FILE names {MISSING}")


def test_grpcs_asks_for_tls(server: str) -> None:
    # a plaintext server does not complete a TLS handshake: the client reports it cannot talk to it
    result = run("get", "Vehicle.Speed", "--server", f"grpcs://{server}")
    assert result.code == EXIT_UNREACHABLE and "Traceback" not in result.err, result.err
    assert os.environ.get("SDV_SERVER") is None
