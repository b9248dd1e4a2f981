"""How a server protects its port: TLS, client certificates, token checks, and the rules that keep it closed.

Rules (closed by default):

* TLS (``--tls-cert``/``--tls-key``) encrypts the connection; with ``--tls-client-ca`` the server also demands a
  client certificate signed by that CA (mutual TLS) and refuses every other client during the handshake.
* Tokens (``--jwt-public-key``) are checked on every call but health checking.
* Serving without TLS, or without tokens, needs ``--insecure``, which logs a warning, except on a loopback
  address (the embedded demo default): only programs on the same machine can reach it, and the server still logs
  that it is open.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

import grpc

from sdv.api.tokens import AUDIENCE, TokenVerifier, load_public_key
from sdv.errors import SdvError, SecurityConfigError
from sdv.files import check_key_pair, read_pem

__all__ = ["SecurityConfigError", "ServerSecurity", "check_key_pair", "is_loopback", "read_pem"]

_LOG = logging.getLogger(__name__)


def is_loopback(address: str) -> bool:
    """Whether ``address`` is reachable only from this machine."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerSecurity:
    """A server's TLS material and token verifier.

    Attributes:
        certificate_chain: the server's certificate chain (PEM), or None for plaintext.
        private_key: the server certificate's private key (PEM).
        client_ca: the CA that client certificates must chain to (PEM), or None to accept any client.
        verifier: checks bearer tokens, or None to serve every call with all rights.
        insecure: the operator explicitly accepted plaintext or no token checks (``--insecure``).
    """

    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    client_ca: bytes | None = None
    verifier: TokenVerifier | None = None
    insecure: bool = False

    @classmethod
    def from_files(
        cls,
        *,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        tls_client_ca: Path | None = None,
        jwt_public_key: Path | None = None,
        jwt_audience: str = AUDIENCE,
        jwt_issuer: str | None = None,
        insecure: bool = False,
    ) -> ServerSecurity:
        """Read and check the files named by ``sdv serve``'s flags.

        Raises:
            SecurityConfigError: a file cannot be read, is not PEM, is not a usable public key, or a flag needs
                another one (a certificate without its key, client CA without TLS).
        """
        if (tls_cert is None) != (tls_key is None):
            raise SecurityConfigError("--tls-cert and --tls-key go together: give both or neither")
        if tls_client_ca is not None and tls_cert is None:
            raise SecurityConfigError("--tls-client-ca needs TLS: give --tls-cert and --tls-key too")
        verifier = None
        if jwt_public_key is not None:
            data = read_pem(jwt_public_key, "--jwt-public-key")
            try:
                key = load_public_key(data, str(jwt_public_key))
            except SdvError as error:
                raise SecurityConfigError(str(error)) from error
            verifier = TokenVerifier(key, audience=jwt_audience, issuer=jwt_issuer)
        certificate_chain = read_pem(tls_cert, "--tls-cert") if tls_cert else None
        private_key = read_pem(tls_key, "--tls-key") if tls_key else None
        if certificate_chain is not None and private_key is not None and tls_cert and tls_key:
            check_key_pair(certificate_chain, private_key, tls_cert, tls_key)
        return cls(
            certificate_chain=certificate_chain,
            private_key=private_key,
            client_ca=read_pem(tls_client_ca, "--tls-client-ca") if tls_client_ca else None,
            verifier=verifier,
            insecure=insecure,
        )

    @property
    def tls(self) -> bool:
        """Whether connections are encrypted."""
        return self.certificate_chain is not None

    def credentials(self) -> grpc.ServerCredentials | None:
        """The gRPC server credentials, or None for a plaintext port."""
        if self.certificate_chain is None or self.private_key is None:
            return None
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate_chain)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )

    def check_address(self, address: str, exposes: str = "read, actuate and provide every signal") -> None:
        """Refuse an open server on an address other machines reach; log what is open (``exposes``: what a
        caller may do without a token).

        Raises:
            SecurityConfigError: plaintext or no token checks on a non-loopback address without ``--insecure``.
        """
        local = is_loopback(address)
        missing = [
            what
            for what, present in (
                ("TLS (--tls-cert, --tls-key)", self.tls),
                ("tokens (--jwt-public-key)", self.verifier),
            )
            if not present
        ]
        if missing and not local and not self.insecure:
            raise SecurityConfigError(
                f"refusing to serve {address} without {' and '.join(missing)}: other machines can reach it; "
                "configure them, or accept the risk with --insecure"
            )
        if missing:
            who = "any program on this machine" if local else "anyone who reaches it"
            _LOG.warning(
                "serving %s without %s: %s may connect%s",
                address,
                " and without ".join(missing),
                who,
                "" if self.verifier else f", {exposes}",
            )
        elif self.client_ca is None:
            _LOG.info(
                "TLS without client certificates: any client with a valid token may connect to %s", address
            )
