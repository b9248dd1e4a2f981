"""``sdv ota trust``: trust roots — init, rotate, sign, and update on an ECU (a local trust file, or a running agent
with ``--target``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sdv.cli.ota_arguments import duration_argument, short_keyid, time_argument
from sdv.cli.ota_refusals import agent_client, refusing
from sdv.cli.security_options import add_connection_arguments
from sdv.durations import parse_duration
from sdv.errors import OtaError
from sdv.ota.bundle.canonical import signing_input
from sdv.ota.bundle.config import DEFAULT_LIMITS
from sdv.ota.bundle.keys import PublicKey
from sdv.ota.bundle.store import (
    load_private_key,
    load_public_key,
    load_time_state,
    load_trust,
    read_limited,
    save_trust,
)
from sdv.ota.bundle.trust import (
    ROOT_TYPE,
    Role,
    RoleName,
    SignedTrustRoot,
    TrustRoot,
    check_trust_root_fresh,
    sign_trust_root,
    verify_rotation,
)
from sdv.ota.bundle.trusted_time import trusted_now

__all__ = ["register"]


# -- trust roots
# -----------------------------------------------------------------------------------------------


def _role(keys: Sequence[PublicKey], threshold: int, name: str) -> Role:
    keyids = sorted({key.keyid for key in keys})
    if len(keyids) != len(keys):
        raise OtaError(f"the {name} keys list one key twice")
    if not 1 <= threshold <= len(keyids):
        raise OtaError(f"{name} threshold {threshold} must lie between 1 and the {len(keyids)} key(s) given")
    return Role(keyids=keyids, threshold=threshold)


def _make_root(
    version: int,
    release_keys: Sequence[PublicKey],
    release_threshold: int,
    root_keys: Sequence[PublicKey],
    root_threshold: int,
    expires: datetime | None,
) -> TrustRoot:
    records = {key.keyid: key.record for key in [*release_keys, *root_keys]}
    try:
        return TrustRoot(
            type=ROOT_TYPE,
            version=version,
            expires=expires,
            keys=records,
            roles={
                RoleName.ROOT: _role(root_keys, root_threshold, "root"),
                RoleName.RELEASE: _role(release_keys, release_threshold, "release"),
            },
        )
    except ValueError as error:
        raise OtaError(f"invalid trust root: {error}") from error


def _expiry(text: str | None) -> datetime | None:
    if text is None:
        return None
    return datetime.now(UTC).replace(microsecond=0) + parse_duration(text)


def _trust_init(args: argparse.Namespace) -> int:
    release = [load_public_key(path) for path in args.key]
    root = [load_public_key(path) for path in args.root_key] if args.root_key else release
    root_threshold = args.root_threshold or args.threshold
    trust = _make_root(1, release, args.threshold, root, root_threshold, _expiry(args.expires))
    save_trust(args.output, SignedTrustRoot(signed=trust, signatures=[]))
    print(f"trust root version 1 written to {args.output}")
    return 0


def _keys_of(trust: TrustRoot, role: RoleName) -> list[PublicKey]:
    return list(trust.role_keys(role).values())


def _trust_rotate(args: argparse.Namespace) -> int:
    current = load_trust(args.trust).signed
    release = (
        [load_public_key(path) for path in args.key] if args.key else _keys_of(current, RoleName.RELEASE)
    )
    root = (
        [load_public_key(path) for path in args.root_key]
        if args.root_key
        else _keys_of(current, RoleName.ROOT)
    )
    threshold = args.threshold or current.roles[RoleName.RELEASE].threshold
    root_threshold = args.root_threshold or current.roles[RoleName.ROOT].threshold
    expires = None if args.no_expiry else (_expiry(args.expires) if args.expires else current.expires)
    new = SignedTrustRoot(
        signed=_make_root(current.version + 1, release, threshold, root, root_threshold, expires),
        signatures=[],
    )
    for path in args.sign_key or []:
        key = load_private_key(path)
        new = sign_trust_root(new, key.sign(_root_message(new.signed)))
    save_trust(args.output, new)
    dropped = sorted(set(current.keys) - set(new.signed.keys))
    print(f"trust root version {new.signed.version} written to {args.output}; {len(dropped)} key(s) dropped")
    if not args.sign_key:
        print("sign it with a threshold of the old and of the new root keys: sdv ota trust sign")
    return 0


def _root_message(root: TrustRoot) -> bytes:
    return signing_input(ROOT_TYPE, root.signed_bytes())


def _trust_sign(args: argparse.Namespace) -> int:
    signed = load_trust(args.trust)
    for path in args.key:
        key = load_private_key(path)
        signed = sign_trust_root(signed, key.sign(_root_message(signed.signed)))
        print(f"signed trust root version {signed.signed.version} with key {short_keyid(key.keyid)}")
    save_trust(args.trust, signed)
    return 0


def _trust_update(args: argparse.Namespace) -> int:
    if args.target:
        roots = [read_limited(path, DEFAULT_LIMITS.max_trust_root_bytes, "trust root") for path in args.new]
        with agent_client(args) as client:
            answer = client.update_trust(roots)
        print(
            f"trust root of the agent at {args.target} updated from version {answer.previous_version} "
            f"to {answer.version}"
        )
        return 0
    current = load_trust(args.trust)
    accepted = current
    for path in args.new:
        candidate = load_trust(path)
        verify_rotation(accepted.signed, candidate, str(path))
        accepted = candidate
    trusted = accepted.signed
    state = load_time_state(args.time_state) if args.time_state else None
    check_trust_root_fresh(trusted, trusted_now(args.now or datetime.now(UTC), state))
    save_trust(args.trust, accepted)
    print(f"trust root updated from version {current.signed.version} to {trusted.version}")
    return 0


def register(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    trust = group.add_parser("trust", help="create, rotate, sign and update trust roots")
    commands = trust.add_subparsers(dest="trust_command", metavar="TRUST_COMMAND", required=True)

    init = commands.add_parser("init", help="create version 1 of a trust root")
    init.add_argument("--key", type=Path, action="append", required=True, help="release public key (repeat)")
    init.add_argument("--threshold", type=int, required=True, help="release signatures required")
    init.add_argument(
        "--root-key", type=Path, action="append", help="root public key (default: the release keys)"
    )
    init.add_argument("--root-threshold", type=int, help="root signatures required (default: --threshold)")
    init.add_argument("--expires", type=duration_argument, help="validity such as 365d (default: no expiry)")
    init.add_argument("-o", "--output", type=Path, required=True, help="trust file to write")
    init.set_defaults(handler=_trust_init)

    rotate = commands.add_parser("rotate", help="create the next version of a trust root")
    rotate.add_argument("trust", type=Path, help="the current trust file")
    rotate.add_argument(
        "--key", type=Path, action="append", help="new release public keys (default: unchanged)"
    )
    rotate.add_argument("--threshold", type=int, help="new release threshold (default: unchanged)")
    rotate.add_argument(
        "--root-key", type=Path, action="append", help="new root public keys (default: unchanged)"
    )
    rotate.add_argument("--root-threshold", type=int, help="new root threshold (default: unchanged)")
    expiry = rotate.add_mutually_exclusive_group()
    expiry.add_argument(
        "--expires", type=duration_argument, help="validity from now, such as 365d (default: unchanged)"
    )
    expiry.add_argument("--no-expiry", action="store_true", help="the new root never expires")
    rotate.add_argument(
        "--sign-key", type=Path, action="append", help="private key to sign the new root (repeat)"
    )
    rotate.add_argument("-o", "--output", type=Path, required=True, help="trust file to write")
    rotate.set_defaults(handler=_trust_rotate)

    sign = commands.add_parser("sign", help="add signatures to a trust root, in place")
    sign.add_argument("trust", type=Path)
    sign.add_argument("--key", type=Path, action="append", required=True, help="private key (repeat)")
    sign.set_defaults(handler=_trust_sign)

    update = commands.add_parser("update", help="ECU side: accept rotated trust roots, in version order")
    update.add_argument("new", type=Path, nargs="+", help="the next trust root versions, oldest first")
    where = update.add_mutually_exclusive_group(required=True)
    where.add_argument("--trust", type=Path, help="the ECU's trust file, replaced atomically")
    where.add_argument("--target", metavar="HOST[:PORT]", help="send them to a running update agent instead")
    add_connection_arguments(update)
    update.add_argument("--time-state", type=Path, help="the ECU's trusted time file (with --trust)")
    update.add_argument("--now", type=time_argument, help="clock reading to use instead of the system clock")
    update.set_defaults(handler=refusing("trust update", _trust_update))
