"""A development certificate authority: a vehicle CA, and the server and client certificates it signs.

What ``sdv pki init`` and ``sdv pki issue`` write, so that TLS and mutual TLS (docs/security.md) can be tried
without another tool. The keys are ECDSA P-256 and lie unencrypted in files: fit for a bench, not for a vehicle,
whose CA key belongs in an HSM and whose device keys belong in a secure element or TPM.

Invariants:

* A CA certificate is a CA (basic constraints ``ca=True``, path length 0) that may sign certificates and CRLs only.
* A leaf certificate is for one use: ``server`` (extended key usage serverAuth, with the names a client dials as
  subject alternative names), ``client`` (clientAuth, the common name being the client's identity) or ``peer``
  (both, with the names: an ECU of a federated vehicle, which accepts its peers' connections and opens its own,
  its common name the ECU's name that the access rules name).
* Validity starts a day early, so that a clock a little behind still accepts a certificate just issued.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sdv.errors import SecurityConfigError
from sdv.files import check_key_pair, read_pem

__all__ = ["DevelopmentAuthority", "IssuedCertificate", "Usage"]

Usage = Literal["server", "client", "peer"]

_CLOCK_SKEW = datetime.timedelta(days=1)
_MAX_DAYS = 100 * 366  # beyond that, the date overflows what X.509 tools expect


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _validity(days: int) -> tuple[datetime.datetime, datetime.datetime]:
    if not 1 <= days <= _MAX_DAYS:
        raise ValueError(f"a validity of {days} days: expected 1 to {_MAX_DAYS}")
    now = datetime.datetime.now(datetime.UTC)
    return now - _CLOCK_SKEW, now + datetime.timedelta(days=days)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate and its private key, both PEM."""

    certificate: bytes
    key: bytes


class DevelopmentAuthority:
    """A CA that signs server and client certificates (see the module's invariants).

    Use :meth:`create` for a new one and :meth:`load` for one written before.
    """

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self._certificate = certificate
        self._key = key

    @classmethod
    def create(cls, name: str, *, days: int = 3650) -> DevelopmentAuthority:
        """A new CA called ``name``, valid for ``days``.

        Raises:
            ValueError: ``days`` out of range or an empty name.
        """
        if not name.strip():
            raise ValueError("the CA's name is empty")
        key = ec.generate_private_key(ec.SECP256R1())
        not_before, not_after = _validity(days)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    @classmethod
    def load(cls, certificate_file: Path, key_file: Path) -> DevelopmentAuthority:
        """A CA from its certificate and unencrypted P-256 key files (as :meth:`create` made them).

        Raises:
            SecurityConfigError: unreadable, not PEM, not a CA certificate, not a P-256 key, or the two do not
                belong together; the message names the files.
        """
        certificate_pem = read_pem(certificate_file, "CA certificate")
        key_pem = read_pem(key_file, "CA key")
        check_key_pair(certificate_pem, key_pem, certificate_file, key_file)  # PEM, unencrypted, one pair
        certificate = x509.load_pem_x509_certificate(certificate_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise SecurityConfigError(f"{key_file}: not an ECDSA P-256 key (what sdv pki init writes)")
        try:
            is_ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise SecurityConfigError(f"{certificate_file}: not a CA certificate")
        return cls(certificate, key)

    @property
    def certificate_pem(self) -> bytes:
        """The CA certificate (PEM): what servers and clients are told to trust."""
        return self._certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The CA's private key (PEM, unencrypted)."""
        return _key_pem(self._key)

    @property
    def name(self) -> str:
        """The CA's common name."""
        attributes = self._certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attributes[0].value) if attributes else ""

    def issue(
        self,
        common_name: str,
        usage: Usage,
        *,
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
        days: int = 825,
    ) -> IssuedCertificate:
        """A new key and a certificate for it, signed by this CA.

        Args:
            common_name: the subject's name (a client's identity; a server's name).
            usage: ``server``, ``client`` or ``peer`` (both at once).
            dns_names: for a server or peer, the host names clients dial (``localhost`` and ``127.0.0.1`` are always
                included, so a bench setup works at once).
            ip_addresses: for a server or peer, the addresses clients dial.
            days: validity (default 825, the longest browsers accept for a server).

        Raises:
            ValueError: an empty name, an address that is not an IP address, names for a client, or ``days`` out of
                range.
        """
        if not common_name.strip():
            raise ValueError("the certificate's name is empty")
        if usage == "client" and (dns_names or ip_addresses):
            raise ValueError("host names and addresses belong in a server certificate, not a client's")
        key = ec.generate_private_key(ec.SECP256R1())
        not_before, not_after = _validity(days)
        purposes = {
            "server": [ExtendedKeyUsageOID.SERVER_AUTH],
            "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
            "peer": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        }[usage]
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self._certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        if usage != "client":
            names: list[x509.GeneralName] = [
                x509.DNSName(name) for name in dict.fromkeys(["localhost", *dns_names])
            ]
            for address in dict.fromkeys(["127.0.0.1", *ip_addresses]):
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(address)))
                except ValueError:
                    raise ValueError(
                        f"{address!r} is not an IP address (give host names with --dns)"
                    ) from None
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        certificate = builder.sign(self._key, hashes.SHA256())
        return IssuedCertificate(certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key))
