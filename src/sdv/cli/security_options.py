"""The security flags the commands share: a server's (``sdv serve``, ``sdv ota agent``) and a client's."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sdv.client import ChannelSecurity
from sdv.client.address import parse_address
from sdv.errors import SdvError

if TYPE_CHECKING:
    from sdv.api.security import ServerSecurity

__all__ = [
    "ENV_SERVER",
    "ENV_TLS_CA",
    "ENV_TOKEN_FILE",
    "add_connection_arguments",
    "add_server_security_arguments",
    "connection",
    "connection_security",
    "server_security",
]

ENV_SERVER = "SDV_SERVER"
"""The signal server of ``sdv get/set/subscribe/list/monitor`` without ``--server``."""
ENV_TOKEN_FILE = "SDV_TOKEN_FILE"  # noqa: S105 - the name of a variable, not a secret
"""The bearer token file of every client command without ``--token`` or ``--token-file``."""
ENV_TLS_CA = "SDV_TLS_CA"
"""The CA every client command trusts (and connects with TLS) without ``--tls-ca``."""


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
    tokens.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help=f"read the bearer token from FILE (default: ${ENV_TOKEN_FILE} if set)",
    )
    group.add_argument("--tls", action="store_true", help="connect with TLS, trusting the system's CAs")
    group.add_argument(
        "--tls-ca",
        type=Path,
        metavar="FILE",
        help=f"connect with TLS, trusting this CA (PEM; default: ${ENV_TLS_CA} if set)",
    )
    group.add_argument(
        "--tls-cert", type=Path, metavar="FILE", help="client certificate for mutual TLS (PEM)"
    )
    group.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    group.add_argument("--tls-server-name", metavar="NAME", help="the name the server's certificate carries")


def _environment_path(name: str) -> Path | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    if not Path(value).is_file():
        raise SdvError(f"${name} names {value}, which is not a file")
    return Path(value)


def connection_security(args: argparse.Namespace, *, tls: bool | None = None) -> ChannelSecurity:
    """The channel security the connection flags ask for, ``$SDV_TOKEN_FILE`` and ``$SDV_TLS_CA`` filling in
    flags not given.

    Args:
        args: the parsed connection flags.
        tls: what the address's scheme asks for (``grpcs://`` True, ``grpc://`` False), None when it says nothing.

    Raises:
        SdvError: a file cannot be read or is not PEM; ``grpc://`` with TLS flags.
    """
    token_file = args.token_file
    if token_file is None and args.token is None:
        token_file = _environment_path(ENV_TOKEN_FILE)
    tls_ca = args.tls_ca or _environment_path(ENV_TLS_CA)
    if tls is False and (args.tls or args.tls_ca or args.tls_cert):
        raise SdvError("a grpc:// address is plaintext: use grpcs:// with the --tls flags")
    return ChannelSecurity.from_files(
        token=args.token,
        token_file=token_file,
        tls_ca=None if tls is False else tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls=args.tls or bool(tls),
        server_name=args.tls_server_name,
    )


def connection(args: argparse.Namespace, address: str, default_port: int) -> tuple[str, ChannelSecurity]:
    """The gRPC target and channel security for ``address`` (``HOST[:PORT]``, ``grpc://``, ``grpcs://``).

    Raises:
        SdvError: the address is not one of the accepted forms, or a security file cannot be used.
    """
    parsed = parse_address(address, default_port)
    return parsed.target, connection_security(args, tls=parsed.tls)
