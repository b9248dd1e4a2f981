"""The security flags the commands share: a server's (``sdv serve``, ``sdv ota agent``) and a client's."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from sdv.client import ChannelSecurity

if TYPE_CHECKING:
    from sdv.api.security import ServerSecurity

__all__ = [
    "add_connection_arguments",
    "add_server_security_arguments",
    "connection_security",
    "server_security",
]


def add_server_security_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tls-cert``, ``--tls-key``, ``--tls-client-ca``, ``--jwt-*`` and ``--insecure`` (docs/security.md)."""
    from sdv.api.tokens import AUDIENCE  # noqa: PLC0415 - a client command never loads the server's token checks

    group = parser.add_argument_group("security (docs/security.md)")
    group.add_argument("--tls-cert", type=Path, metavar="FILE", help="server certificate chain (PEM)")
    group.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    group.add_argument(
        "--tls-client-ca",
        type=Path,
        metavar="FILE",
        help="require client certificates signed by this CA (PEM)",
    )
    group.add_argument(
        "--jwt-public-key",
        type=Path,
        metavar="FILE",
        help="check a bearer token signed by this key's private half on every call (PEM: RSA, P-256, Ed25519)",
    )
    group.add_argument(
        "--jwt-audience", default=AUDIENCE, help=f"the audience tokens must name (default {AUDIENCE})"
    )
    group.add_argument("--jwt-issuer", help="the issuer tokens must name (default: any)")
    group.add_argument(
        "--insecure",
        action="store_true",
        help="allow plaintext or no token checks on an address other machines reach (logs a warning)",
    )


def server_security(args: argparse.Namespace) -> ServerSecurity:
    """The server security the flags ask for (files read and checked).

    Raises:
        SecurityConfigError: a file cannot be used or flags contradict each other.
    """
    from sdv.api.security import ServerSecurity  # noqa: PLC0415 - as above

    return ServerSecurity.from_files(
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        jwt_public_key=args.jwt_public_key,
        jwt_audience=args.jwt_audience,
        jwt_issuer=args.jwt_issuer,
        insecure=args.insecure,
    )


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every command that connects to a server shares: a token and TLS."""
    group = parser.add_argument_group("connection security")
    tokens = group.add_mutually_exclusive_group()
    tokens.add_argument("--token", help="bearer token (JWT) sent with every call")
    tokens.add_argument("--token-file", type=Path, metavar="FILE", help="read the bearer token from FILE")
    group.add_argument("--tls", action="store_true", help="connect with TLS, trusting the system's CAs")
    group.add_argument("--tls-ca", type=Path, metavar="FILE", help="connect with TLS, trusting this CA (PEM)")
    group.add_argument(
        "--tls-cert", type=Path, metavar="FILE", help="client certificate for mutual TLS (PEM)"
    )
    group.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    group.add_argument("--tls-server-name", metavar="NAME", help="the name the server's certificate carries")


def connection_security(args: argparse.Namespace) -> ChannelSecurity:
    """The channel security the connection flags ask for.

    Raises:
        SdvError: a file cannot be read or is not PEM.
    """
    return ChannelSecurity.from_files(
        token=args.token,
        token_file=args.token_file,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls=args.tls,
        server_name=args.tls_server_name,
    )
