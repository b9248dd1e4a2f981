"""``sdv pki init`` and ``sdv pki issue`` as a user runs them: the files they write serve mutual TLS between
``sdv serve`` and ``sdv get`` as processes, nothing is overwritten, and mistakes end in one line."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.security.test_security_cli import sdv
from tests.serve_process import serving

DEVELOPMENT_WARNING = "on a vehicle the CA key belongs in an HSM"


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    for arguments in (
        ("init", "--dir", str(directory), "--name", "test vehicle CA"),
        ("issue", "--dir", str(directory), "--server", "vehicle", "--dns", "ecu.local", "--ip", "10.0.0.2"),
        ("issue", "--dir", str(directory), "--client", "dashboard"),
        ("issue", "--dir", str(directory), "--peer", "cockpit", "--ip", "10.0.0.3"),
    ):
        done = sdv("pki", *arguments)
        assert done.returncode == 0, done.stderr
        assert DEVELOPMENT_WARNING in done.stderr
    return directory


def test_the_written_files_are_a_ca_a_server_a_client_and_a_peer(pki: Path) -> None:
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    server = x509.load_pem_x509_certificate((pki / "vehicle.crt").read_bytes())
    client = x509.load_pem_x509_certificate((pki / "dashboard.crt").read_bytes())
    peer = x509.load_pem_x509_certificate((pki / "cockpit.crt").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for leaf in (server, client, peer):
        assert leaf.issuer == ca.subject
        leaf.verify_directly_issued_by(ca)
    usages = {
        name: list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        for name, leaf in (("server", server), ("client", client), ("peer", peer))
    }
    assert usages == {
        "server": [ExtendedKeyUsageOID.SERVER_AUTH],
        "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
        "peer": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    }
    peer_names = peer.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(address) for address in peer_names.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "10.0.0.3",
    }
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"localhost", "ecu.local"}
    assert {str(address) for address in names.get_values_for_type(x509.IPAddress)} == {
        "127.0.0.1",
        "10.0.0.2",
    }
    for key in ("ca.key", "vehicle.key", "dashboard.key", "cockpit.key"):
        assert stat.S_IMODE((pki / key).stat().st_mode) == 0o600


def test_mutual_tls_between_serve_and_get_with_the_written_files(pki: Path) -> None:
    server_files = ("--tls-cert", str(pki / "vehicle.crt"), "--tls-key", str(pki / "vehicle.key"))
    with serving(*server_files, "--tls-client-ca", str(pki / "ca.crt")) as (port, _):
        trusted = ("--server", f"grpcs://localhost:{port}", "--tls-ca", str(pki / "ca.crt"))
        client_files = ("--tls-cert", str(pki / "dashboard.crt"), "--tls-key", str(pki / "dashboard.key"))
        done = sdv("get", *trusted, *client_files, "Vehicle.Speed")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("Vehicle.Speed = ")
        # without the client certificate the handshake fails: reported as unreachable, in one line
        refused = sdv("get", *trusted, "Vehicle.Speed")
        assert refused.returncode == 3
        assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr


def test_nothing_is_overwritten(pki: Path) -> None:
    before = (pki / "ca.key").read_bytes()
    again = sdv("pki", "init", "--dir", str(pki))
    assert again.returncode == 2
    assert f"{pki / 'ca.crt'} exists" in again.stderr
    assert (pki / "ca.key").read_bytes() == before
    twice = sdv("pki", "issue", "--dir", str(pki), "--client", "dashboard")
    assert twice.returncode == 2 and "dashboard.crt exists" in twice.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("issue", "--server", "../escape"), "expected a name of letters, digits"),
        (("issue", "--server", "vehicle", "--ip", "ecu.local"), "'ecu.local' is not an IP address"),
        (("issue", "--client", "hmi", "--dns", "hmi.local"), "belong in a server certificate"),
        (("issue", "--client", "hmi", "--days", "0"), "a validity of 0 days"),
    ],
)
def test_mistakes_end_in_one_line(pki: Path, arguments: tuple[str, ...], message: str) -> None:
    command, *rest = arguments
    done = sdv("pki", command, "--dir", str(pki), *rest)
    assert done.returncode in (1, 2), done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr


def test_issue_without_a_ca_names_the_missing_file(tmp_path: Path) -> None:
    done = sdv("pki", "issue", "--dir", str(tmp_path), "--server", "vehicle")
    assert done.returncode == 2
    assert f"CA certificate {tmp_path / 'ca.crt'}" in done.stderr and "Traceback" not in done.stderr


def test_a_ca_key_that_does_not_match_is_refused(tmp_path: Path, pki: Path) -> None:
    other = tmp_path / "other"
    assert sdv("pki", "init", "--dir", str(other)).returncode == 0
    (pki / "ca.key").write_bytes((other / "ca.key").read_bytes())
    done = sdv("pki", "issue", "--dir", str(pki), "--client", "hmi")
    assert done.returncode == 2
    assert "does not match" in done.stderr and "ca.key" in done.stderr
