"""The TLS tests' certificate authority: :class:`sdv.pki.DevelopmentAuthority`, the CA ``sdv pki`` writes, with
the short form these tests use (``issue(name, server=True)``, leaves that write themselves into a directory)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sdv.pki import DevelopmentAuthority


@dataclass(frozen=True)
class Leaf:
    certificate: bytes
    key: bytes

    def write(self, directory: Path, stem: str) -> tuple[Path, Path]:
        cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
        cert.write_bytes(self.certificate)
        key.write_bytes(self.key)
        return cert, key


class Authority:
    """A CA, valid for a day, that signs server and client certificates."""

    def __init__(self, name: str) -> None:
        self._authority = DevelopmentAuthority.create(name, days=1)
        self.pem = self._authority.certificate_pem

    def issue(self, common_name: str, *, server: bool) -> Leaf:
        issued = self._authority.issue(common_name, "server" if server else "client", days=1)
        return Leaf(issued.certificate, issued.key)
