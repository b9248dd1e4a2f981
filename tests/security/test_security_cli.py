"""The security side of the command line: ``sdv serve``'s closed defaults, ``sdv keys`` and ``sdv token``."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sdv.api.tokens import TokenVerifier, load_public_key
from sdv.broker.access import Action
from tests.serve_process import REPOSITORY, SERVE


def sdv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sdv.cli.main", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_serve_refuses_an_open_port_other_machines_reach() -> None:
    done = subprocess.run(
        [sys.executable, *SERVE, "--address", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPOSITORY,
        check=False,
    )
    assert done.returncode == 2
    assert (
        "refusing to serve 0.0.0.0 without TLS (--tls-cert, --tls-key) and tokens (--jwt-public-key)"
        in done.stderr
    )
    assert "--insecure" in done.stderr


def test_serve_with_insecure_opens_it_and_warns() -> None:
    process = subprocess.Popen(
        [sys.executable, *SERVE, "--address", "0.0.0.0", "--port", "0", "--insecure"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPOSITORY,
    )
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    assert re.match(r"sdv serve: listening on 0\.0\.0\.0:\d+", line)
    errors = process.stderr.read()
    assert (
        "serving 0.0.0.0 without TLS (--tls-cert, --tls-key) and without tokens (--jwt-public-key): anyone who "
        "reaches it may connect, read, actuate and provide every signal" in errors
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tls-cert", "server.crt"], "--tls-cert and --tls-key go together"),
        (["--tls-client-ca", "ca.crt"], "--tls-client-ca needs TLS"),
        (["--jwt-public-key", "missing.pub"], "--jwt-public-key missing.pub: No such file"),
    ],
)
def test_serve_names_a_bad_security_setting(flags: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, *SERVE, "--port", "0", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPOSITORY,
        check=False,
    )
    assert done.returncode == 2 and message in done.stderr


def test_serve_names_a_bad_limits_file(tmp_path: Path) -> None:
    limits = tmp_path / "limits.yaml"
    limits.write_text("max_subscriptions: 0\nmax_streamz: 5\n")
    done = subprocess.run(
        [sys.executable, *SERVE, "--port", "0", "--limits", str(limits)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPOSITORY,
        check=False,
    )
    assert done.returncode == 2
    assert f"{limits}: max_subscriptions: Input should be greater than or equal to 1" in done.stderr
    assert f"{limits}: max_streamz: unknown field" in done.stderr


@pytest.mark.parametrize("key_type", ["ed25519", "ecdsa-p256", "rsa"])
def test_keys_and_tokens_round_trip(tmp_path: Path, key_type: str) -> None:
    private, public = tmp_path / "sign.pem", tmp_path / "sign.pub"
    generated = sdv(
        "keys", "generate", "--private", str(private), "--public", str(public), "--type", key_type
    )
    assert generated.returncode == 0, generated.stderr
    assert private.stat().st_mode & 0o777 == 0o600
    created = sdv(
        "token",
        "create",
        "--private-key",
        str(private),
        "--scope",
        "read:Vehicle.Speed actuate:Vehicle.Body.Lights",
        "--ttl",
        "2h",
        "--subject",
        "hmi",
    )
    assert created.returncode == 0, created.stderr
    access, expires = TokenVerifier(load_public_key(public.read_bytes(), str(public))).verify(
        created.stdout.strip()
    )
    assert access.subject == "hmi"
    assert 7100 < expires - time.time() <= 7200
    assert access.allows(Action.ACTUATE, "Vehicle.Body.Lights.Beam.Low.IsOn")
    assert not access.allows(Action.READ, "Vehicle.Cabin.HVAC.TargetTemperature")


def test_keys_are_never_overwritten(tmp_path: Path) -> None:
    private, public = tmp_path / "sign.pem", tmp_path / "sign.pub"
    private.write_text("precious")
    done = sdv("keys", "generate", "--private", str(private), "--public", str(public))
    assert done.returncode == 2 and "never overwritten" in done.stderr
    assert private.read_text() == "precious" and not public.exists()


def test_token_create_refuses_a_malformed_scope(tmp_path: Path) -> None:
    private, public = tmp_path / "sign.pem", tmp_path / "sign.pub"
    sdv("keys", "generate", "--private", str(private), "--public", str(public))
    done = sdv("token", "create", "--private-key", str(private), "--scope", "read:Vehicle.Cabin.Door.Row-2")
    assert done.returncode == 2 and "path segment 'Row-2'" in done.stderr and not done.stdout


def test_token_create_refuses_a_scope_with_a_no_break_space(tmp_path: Path) -> None:
    private, public = tmp_path / "sign.pem", tmp_path / "sign.pub"
    sdv("keys", "generate", "--private", str(private), "--public", str(public))
    done = sdv("token", "create", "--private-key", str(private), "--scope", "read:Vehicle.Cabin\u00a0read")
    assert done.returncode == 2 and not done.stdout
    assert "U+00A0 at position 18" in done.stderr and len(done.stderr.strip().splitlines()) == 1
