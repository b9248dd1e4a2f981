"""TLS mistakes named by the files and flags involved, not as a bind failure or ``Socket closed``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sdv.cli.exit_codes import EXIT_UNREACHABLE, EXIT_USAGE
from tests.security.pki import Authority
from tests.serve_process import serving
from tests.test_cli_exit_codes import assert_one_clear_line, run


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    authority = Authority("vehicle CA")
    authority.issue("localhost", server=True).write(directory, "server")
    authority.issue("other", server=True).write(directory, "other")
    authority.issue("hmi", server=False).write(directory, "hmi")
    (directory / "ca.crt").write_bytes(authority.pem)
    return directory


def test_serve_names_a_certificate_that_does_not_match_its_key(pki: Path) -> None:
    cert, key = pki / "server.crt", pki / "other.key"
    result = run("serve", "--port", "0", "--tls-cert", str(cert), "--tls-key", str(key))
    assert_one_clear_line(
        result, EXIT_USAGE, f"sdv serve: server.crt does not match other.key: the certificate {cert}"
    )


def test_a_client_names_a_certificate_that_does_not_match_its_key(pki: Path) -> None:
    flags = [
        "--tls-ca",
        str(pki / "ca.crt"),
        "--tls-cert",
        str(pki / "hmi.crt"),
        "--tls-key",
        str(pki / "other.key"),
    ]
    result = run("get", "Vehicle.Speed", "--server", "127.0.0.1:9", *flags)
    assert_one_clear_line(result, EXIT_USAGE, "sdv get: hmi.crt does not match other.key")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("cert", b"-----BEGIN CERTIFICATE-----\nnot base64\n", "not a PEM certificate"),
     ("key", b"-----BEGIN PRIVATE KEY-----\nnot base64\n", "not a PEM private key")],
)  # fmt: skip
def test_a_file_that_is_no_certificate_or_key_is_named(
    pki: Path, tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    broken = tmp_path / f"broken.{name}"
    broken.write_bytes(content)
    cert = broken if name == "cert" else pki / "server.crt"
    key = broken if name == "key" else pki / "server.key"
    result = run("serve", "--port", "0", "--tls-cert", str(cert), "--tls-key", str(key))
    assert_one_clear_line(result, EXIT_USAGE, f"{broken}: {message}")


@pytest.fixture(scope="module")
def mtls_server(pki: Path) -> Iterator[str]:
    with serving(
        "--tls-cert", str(pki / "server.crt"), "--tls-key", str(pki / "server.key"),
        "--tls-client-ca", str(pki / "ca.crt"),
    ) as (port, _process):  # fmt: skip
        yield f"127.0.0.1:{port}"


def test_a_plaintext_client_of_a_tls_server_is_told_to_use_tls(mtls_server: str) -> None:
    result = run("get", "Vehicle.Speed", "--server", mtls_server)
    assert_one_clear_line(result, EXIT_UNREACHABLE, "the server closed the connection: it may require TLS")
    assert "Socket closed" not in result.err


def test_a_client_without_certificate_is_told_to_give_one(mtls_server: str, pki: Path) -> None:
    flags = ["--tls-ca", str(pki / "ca.crt"), "--tls-server-name", "localhost"]
    result = run("get", "Vehicle.Speed", "--server", mtls_server, *flags)
    assert_one_clear_line(
        result, EXIT_UNREACHABLE, "it may require a client certificate (give --tls-cert and --tls-key)"
    )
    flags += ["--tls-cert", str(pki / "hmi.crt"), "--tls-key", str(pki / "hmi.key")]
    assert run("get", "Vehicle.Speed", "--server", mtls_server, *flags).code == 0


def test_a_tls_client_of_a_plaintext_server_is_told_it_speaks_plaintext(pki: Path) -> None:
    with serving() as (port, _process):
        result = run(
            "get", "Vehicle.Speed", "--server", f"grpcs://127.0.0.1:{port}", "--tls-ca", str(pki / "ca.crt")
        )
    assert result.code == EXIT_UNREACHABLE and "Traceback" not in result.err
    assert "the server does not speak TLS" in result.err
