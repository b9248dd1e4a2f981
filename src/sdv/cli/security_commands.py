"""``sdv keys generate`` and ``sdv token create``: the key pair and the bearer tokens of a server that checks tokens.

``sdv keys generate --private FILE --public FILE [--type ed25519|ecdsa-p256|rsa]`` writes a new key pair (the
private key with mode 0600, both written atomically, neither overwritten). ``sdv token create --private-key FILE
--scope "read:Vehicle.Speed actuate:Vehicle.Body.Lights" [--ttl 1h]`` prints a signed token on standard output;
give the public key to ``sdv serve --jwt-public-key``.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from sdv.api.tokens import (
    AUDIENCE,
    TokenKeyType,
    create_token,
    generate_key,
    load_token_signing_key,
    private_key_pem,
    public_key_pem,
)
from sdv.durations import parse_duration
from sdv.errors import SdvError
from sdv.ota.bundle.store import read_limited, write_atomically

__all__ = ["register"]

_MAX_KEY_BYTES = 64 * 1024


class _ExistsError(SdvError, FileExistsError):
    """A key file that is already there (keys are never overwritten)."""


def _generate(args: argparse.Namespace) -> int:
    private: Path = args.private
    public: Path = args.public
    for path in (private, public):
        if path.exists():
            raise _ExistsError(f"{path} exists; keys are never overwritten (remove it first)")
    key = generate_key(TokenKeyType(args.type))
    write_atomically(private, private_key_pem(key), mode=0o600)
    write_atomically(public, public_key_pem(key))
    print(f"sdv keys: wrote {args.type} private key {private} (mode 0600) and public key {public}")
    return 0


def _ttl(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _create(args: argparse.Namespace) -> int:
    path: Path = args.private_key
    key = load_token_signing_key(read_limited(path, _MAX_KEY_BYTES, "private key"), str(path))
    ttl: timedelta = args.ttl
    token = create_token(
        key,
        args.scope,
        subject=args.subject,
        issuer=args.issuer,
        audience=args.audience,
        ttl_s=ttl.total_seconds(),
    )
    print(token)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sdv keys`` and ``sdv token`` to the ``sdv`` parser."""
    keys = subparsers.add_parser("keys", help="key pairs for signing bearer tokens")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    generate = keys_commands.add_parser("generate", help="write a new key pair")
    generate.add_argument(
        "--private", type=Path, required=True, metavar="FILE", help="private key (PEM, 0600)"
    )
    generate.add_argument("--public", type=Path, required=True, metavar="FILE", help="public key (PEM)")
    generate.add_argument(
        "--type", choices=[kind.value for kind in TokenKeyType], default="ed25519", help="default ed25519"
    )
    generate.set_defaults(handler=_generate)

    token = subparsers.add_parser("token", help="bearer tokens for servers that check them")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    create = token_commands.add_parser("create", help="print a signed token")
    create.add_argument("--private-key", type=Path, required=True, metavar="FILE", help="signing key (PEM)")
    create.add_argument(
        "--scope",
        required=True,
        help='space-separated rights, e.g. "read:Vehicle.Speed actuate:Vehicle.Body.Lights" (docs/security.md)',
    )
    create.add_argument(
        "--ttl", type=_ttl, default=timedelta(hours=1), help="lifetime such as 30m, 1h or 7d (default 1h)"
    )
    create.add_argument("--subject", default="sdv-app", help="the token's sub: who uses it (default sdv-app)")
    create.add_argument("--issuer", default="sdv", help="the token's iss (default sdv)")
    create.add_argument("--audience", default=AUDIENCE, help=f"the token's aud (default {AUDIENCE})")
    create.set_defaults(handler=_create)
