"""The VISS port's TLS: the same certificate, key and client CA as the gRPC port, as an :class:`ssl.SSLContext`."""

from __future__ import annotations

import ssl
import tempfile
from pathlib import Path

from sdv.api.security import ServerSecurity

__all__ = ["server_context"]


def server_context(security: ServerSecurity) -> ssl.SSLContext | None:
    """A TLS server context for ``security`` (client certificates required with a client CA), or None for
    plaintext."""
    if security.certificate_chain is None or security.private_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl loads a certificate chain only from files: the PEM already read and checked goes through a private
    # directory that lives only as long as the loading.
    with tempfile.TemporaryDirectory(prefix="sdv-viss-tls-") as directory:
        certificate, key = Path(directory, "certificate.pem"), Path(directory, "key.pem")
        certificate.write_bytes(security.certificate_chain)
        key.touch(mode=0o600)
        key.write_bytes(security.private_key)
        context.load_cert_chain(certificate, key)
    if security.client_ca is not None:
        context.load_verify_locations(cadata=security.client_ca.decode("ascii"))
        context.verify_mode = ssl.CERT_REQUIRED
    return context
