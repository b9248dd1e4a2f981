"""``sdv pki init`` and ``sdv pki issue``: a development CA and the TLS certificates of servers and clients.

``sdv pki init --dir pki`` writes ``pki/ca.crt`` and ``pki/ca.key`` (mode 0600). ``sdv pki issue --dir pki
--server vehicle [--dns ecu.local] [--ip 192.168.0.2]`` writes ``pki/vehicle.crt`` and ``pki/vehicle.key`` for
``sdv serve --tls-cert/--tls-key``; ``--client dashboard`` writes a client certificate for ``--tls-cert/--tls-key``
of a client, accepted by ``sdv serve --tls-client-ca pki/ca.crt``; ``--peer cockpit`` writes a certificate that is
both (an ECU of a federated vehicle, ``federation.tls``). Nothing is ever overwritten. Each command that
wrote files warns on standard error that these keys are for development (:mod:`sdv.pki`).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from sdv.errors import SdvError
from sdv.files import write_atomically
from sdv.pki import DevelopmentAuthority, Usage

__all__ = ["register"]

_CA_STEM = "ca"
_STEM = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_WARNING = (
    "sdv pki: development certificates: the keys lie unencrypted in files; on a vehicle the CA key belongs in an "
    "HSM and device keys in a secure element or TPM"
)


class _ExistsError(SdvError, FileExistsError):
    """A certificate or key file that is already there (they are never overwritten)."""


def _files(directory: Path, stem: str) -> tuple[Path, Path]:
    return directory / f"{stem}.crt", directory / f"{stem}.key"


def _write_new(directory: Path, stem: str, certificate: bytes, key: bytes) -> tuple[Path, Path]:
    cert_file, key_file = _files(directory, stem)
    for path in (cert_file, key_file):
        if path.exists():
            raise _ExistsError(
                f"{path} exists; certificates and keys are never overwritten (remove it first)"
            )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SdvError(f"{directory}: cannot create the directory: {error.strerror or error}") from None
    write_atomically(key_file, key, mode=0o600)
    write_atomically(cert_file, certificate)
    return cert_file, key_file


def _init(args: argparse.Namespace) -> int:
    try:
        authority = DevelopmentAuthority.create(args.name, days=args.days)
    except ValueError as error:
        raise SdvError(str(error)) from None
    cert_file, key_file = _write_new(args.dir, _CA_STEM, authority.certificate_pem, authority.key_pem)
    print(f"sdv pki: wrote CA {authority.name!r}: {cert_file} (trust this) and {key_file} (mode 0600)")
    print(_WARNING, file=sys.stderr)
    return 0


def _issue(args: argparse.Namespace) -> int:
    usage: Usage = "server" if args.server else "peer" if args.peer else "client"
    stem: str = args.server or args.peer or args.client
    if not _STEM.match(stem):
        raise SdvError(
            f"--{usage} {stem!r}: expected a name of letters, digits, '_', '.' or '-' (it names the files)"
        )
    ca_cert, ca_key = _files(args.dir, _CA_STEM)
    authority = DevelopmentAuthority.load(ca_cert, ca_key)
    try:
        issued = authority.issue(stem, usage, dns_names=args.dns, ip_addresses=args.ip, days=args.days)
    except ValueError as error:
        raise SdvError(str(error)) from None
    cert_file, key_file = _write_new(args.dir, stem, issued.certificate, issued.key)
    print(
        f"sdv pki: wrote {usage} certificate {cert_file} and key {key_file} (mode 0600), signed by {ca_cert}"
    )
    print(_WARNING, file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sdv pki`` to the ``sdv`` parser."""
    pki = subparsers.add_parser("pki", help="a development CA and TLS certificates for servers and clients")
    commands = pki.add_subparsers(dest="pki_command", required=True, metavar="COMMAND")
    init = commands.add_parser("init", help="write a new CA certificate and key into DIR")
    init.add_argument("--dir", type=Path, required=True, metavar="DIR", help="where the CA's files go")
    init.add_argument("--name", default="sdv development vehicle CA", help="the CA's common name")
    init.add_argument("--days", type=int, default=3650, help="validity in days (default 3650)")
    init.set_defaults(handler=_init)

    issue = commands.add_parser("issue", help="write a certificate and key signed by the CA in DIR")
    issue.add_argument(
        "--dir", type=Path, required=True, metavar="DIR", help="the directory of `sdv pki init`"
    )
    who = issue.add_mutually_exclusive_group(required=True)
    who.add_argument("--server", metavar="NAME", help="a server certificate (for sdv serve, sdv ota agent)")
    who.add_argument(
        "--client", metavar="NAME", help="a client certificate for mutual TLS; NAME is its identity"
    )
    who.add_argument(
        "--peer",
        metavar="NAME",
        help="a certificate for server and client use at once (a federated ECU; NAME is the ECU's name)",
    )
    issue.add_argument(
        "--dns", action="append", default=[], metavar="HOST", help="a host name clients dial (repeatable)"
    )
    issue.add_argument(
        "--ip", action="append", default=[], metavar="ADDRESS", help="an address clients dial (repeatable)"
    )
    issue.add_argument("--days", type=int, default=825, help="validity in days (default 825)")
    issue.set_defaults(handler=_issue)
