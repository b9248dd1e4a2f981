"""Mutual-TLS material for the federation tests, made as an integrator makes it for a bench: one development CA and
a peer certificate per ECU (:class:`sdv.pki.DevelopmentAuthority`, what ``sdv pki init`` and ``sdv pki issue
--peer`` write), whose common name is the ECU's name (the subject the access rules name). An ECU is a TLS server
and client at once."""

from __future__ import annotations

from pathlib import Path

from sdv.federation_config import FederationTls
from sdv.pki import DevelopmentAuthority


def write_ecu_certificates(directory: Path, ecus: list[str]) -> dict[str, FederationTls]:
    """A CA in ``directory`` and one certificate and key per ECU; each ECU's ``federation.tls``."""
    authority = DevelopmentAuthority.create("vehicle-ca", days=1)
    root = directory / "vehicle-ca.pem"
    root.write_bytes(authority.certificate_pem)
    settings = {}
    for ecu in ecus:
        issued = authority.issue(ecu, "peer", days=1)
        certificate_file, key_file = directory / f"{ecu}.pem", directory / f"{ecu}.key"
        certificate_file.write_bytes(issued.certificate)
        key_file.write_bytes(issued.key)
        settings[ecu] = FederationTls(root_ca=root, certificate=certificate_file, private_key=key_file)
    return settings
