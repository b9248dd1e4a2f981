"""The ``sdv ota`` command group: keys, trust roots, bundles and install reports.

The update agent's commands (``agent``, ``install``, ``status``, ``activate``, ``mark-good``, ``rollback``,
``cancel``, ``push``) live in :mod:`sdv.cli.ota_agent_commands`, its records (``report``, ``log``) in
:mod:`sdv.cli.ota_record_commands`; both join this group.

Server and integrator side: ``keygen``, ``trust init``, ``trust rotate``, ``trust sign``, ``build``, ``sign``,
``inspect``. ECU side: ``verify``, ``trust update`` (a local trust file, or a running agent with ``--target``).

Exit codes: 0 on success; 1 when a bundle, trust root or report is refused (the reason on stderr, prefixed
with the command); 2 for every other error (unreadable files, bad arguments), as for every ``sdv`` command.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sdv.cli import ota_agent_commands, ota_record_commands
from sdv.cli.ota_refusals import agent_client, counter_argument, refusing
from sdv.cli.security_options import add_connection_arguments
from sdv.errors import OtaError, VerificationError
from sdv.ota.bundle.canonical import canonical_bytes, format_time, signing_input
from sdv.ota.bundle.config import DEFAULT_LIMITS, OtaLimits
from sdv.ota.bundle.format import MAGIC
from sdv.ota.bundle.keys import KeyType, PublicKey, generate_private_key
from sdv.ota.bundle.manifest import (
    MANIFEST_TYPE,
    NAME_PATTERN,
    PATTERN_WORDS,
    SEMVER_PATTERN,
    FileTreeTarget,
    PayloadTarget,
    SlotImageTarget,
)
from sdv.ota.bundle.store import (
    PayloadSource,
    build_bundle,
    load_private_key,
    load_public_key,
    load_time_state,
    load_trust,
    open_for_reading,
    read_bundle_header,
    read_limited,
    save_trust,
    sign_bundle,
    verify_bundle_file,
    write_atomically,
    write_private_key,
)
from sdv.ota.bundle.trust import (
    ROOT_TYPE,
    Role,
    RoleName,
    SignedTrustRoot,
    TrustRoot,
    check_trust_root_fresh,
    sign_trust_root,
    tally_signatures,
    verify_rotation,
)
from sdv.ota.bundle.trusted_time import parse_duration, trusted_now

__all__ = ["register"]

_DEFAULT_EXPIRY = "30d"


def _time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time such as 2030-01-01T00:00:00Z"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"time {text!r} needs a time zone (such as Z)")
    return moment


def _duration(text: str) -> str:
    try:
        parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _matching(pattern: str) -> Callable[[str], str]:
    """An ``argparse`` type for text that must match one of the manifest's patterns, named in words."""

    def check(text: str) -> str:
        if re.fullmatch(pattern, text) is None:
            raise argparse.ArgumentTypeError(f"{text!r}: {PATTERN_WORDS[pattern]} expected")
        return text

    return check


def _short(keyid: str) -> str:
    return keyid[:16]


# -- keys
# ------------------------------------------------------------------------------------------------------


def _keygen(args: argparse.Namespace) -> int:
    private_path: Path = args.private
    if private_path.exists() and not args.force:
        raise OtaError(f"{private_path} exists; pass --force to replace the key")
    key = generate_private_key(KeyType(args.type))
    write_private_key(private_path, key)
    write_atomically(args.public, key.public_key.to_pem())
    print(f"{key.public_key.type.value} key {key.keyid}")
    return 0


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
        print(f"signed trust root version {signed.signed.version} with key {_short(key.keyid)}")
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


# -- bundles
# ---------------------------------------------------------------------------------------------------


def _parse_targets(specs: Sequence[str]) -> dict[str, PayloadTarget]:
    targets: dict[str, PayloadTarget] = {}
    for spec in specs:
        name, _, rest = spec.partition("=")
        kind, _, where = rest.partition(":")
        try:
            if kind == "slot":
                targets[name] = SlotImageTarget(kind="slot-image", slot=where)
            elif kind == "tree":
                targets[name] = FileTreeTarget(kind="file-tree", path=where)
            else:
                raise ValueError("expected NAME=slot:SLOT or NAME=tree:/PATH")
        except ValueError as error:
            raise OtaError(f"--target {spec!r}: {error}") from error
    return targets


def _counter_floor(text: str) -> tuple[str, int]:
    group, separator, counter = text.partition("=")
    if not separator or not group or not counter.isdigit() or int(counter) < 1:
        raise argparse.ArgumentTypeError(f"expected GROUP=COUNTER with a counter of at least 1, got {text!r}")
    return group, int(counter)


def _default_target(path: Path) -> PayloadTarget:
    if path.suffix == ".tar":
        return FileTreeTarget(kind="file-tree", path=f"/opt/{path.stem}")
    return SlotImageTarget(kind="slot-image", slot=path.name.split(".", 1)[0] or path.name)


def _build(args: argparse.Namespace) -> int:
    targets = _parse_targets(args.target or [])
    sources = []
    for path in args.payload:
        if not path.is_file():
            raise OtaError(f"payload {path} is not a file")
        target = targets.pop(path.name) if path.name in targets else _default_target(path)
        sources.append(PayloadSource(path, path.name, target))
    if targets:
        raise OtaError(f"--target names no payload: {', '.join(sorted(targets))}")
    try:
        manifest = build_bundle(
            args.output,
            name=args.name,
            version=args.version,
            release_counter=args.release_counter,
            hardware_ids=args.hardware_id,
            payloads=sources,
            expires_in=parse_duration(args.expires),
            reinstall=args.reinstall,
            counter_floors=dict(args.counter_floor or []),
        )
    except VerificationError as error:  # the author's own input: the command cannot run as given (exit 2)
        raise OtaError(str(error)) from error
    print(
        f"built {args.output}: {manifest.name} {manifest.version} (release counter {manifest.release_counter}), "
        f"{len(manifest.payloads)} payload(s), expires {format_time(manifest.expires)}; unsigned"
    )
    return 0


def _sign(args: argparse.Namespace) -> int:
    keys = [load_private_key(path) for path in args.key]
    if args.trust is not None:  # every key checked before the bundle is touched
        listed = load_trust(args.trust).signed.role_keys(RoleName.RELEASE)
        for path, key in zip(args.key, keys, strict=True):
            if key.keyid not in listed:
                raise OtaError(
                    f"{path}: key {_short(key.keyid)} is not a release key of {args.trust}; "
                    "ECUs trusting it would ignore this signature"
                )
    else:
        print(
            "note: keys not checked against a trust root (pass --trust FILE to check them)", file=sys.stderr
        )
    for key in keys:
        header = sign_bundle(args.bundle, key)
        print(f"signed {args.bundle} with key {_short(key.keyid)}; {len(header.signatures)} signature(s)")
    return 0


def _inspect_bundle(args: argparse.Namespace) -> int:
    header = read_bundle_header(args.file)
    manifest = header.parse_manifest(str(args.file))
    trust = load_trust(args.trust).signed if args.trust else None
    if args.json:
        document = {
            "manifest": manifest.model_dump(mode="json"),
            "signatures": [signature.model_dump(mode="json") for signature in header.signatures],
        }
        print(json.dumps(document, indent=2, sort_keys=True))
        return 0
    print(f"bundle {args.file}")
    print(f"  name:            {manifest.name}")
    print(f"  version:         {manifest.version}")
    print(f"  release counter: {manifest.release_counter}{' (may re-install)' if manifest.reinstall else ''}")
    if manifest.counter_floors:
        floors = ", ".join(f"{group} {floor}" for group, floor in sorted(manifest.counter_floors.items()))
        print(f"  counter floors:  {floors}")
    print(f"  hardware ids:    {', '.join(manifest.hardware_ids)}")
    print(f"  created:         {format_time(manifest.created)}")
    print(f"  expires:         {format_time(manifest.expires)}")
    print(f"  payloads ({len(manifest.payloads)}):")
    for payload in manifest.payloads:
        target = payload.target
        where = (
            f"slot {target.slot}" if isinstance(target, SlotImageTarget) else f"file tree at {target.path}"
        )
        print(f"    {payload.name}: {payload.size} bytes, sha256 {payload.sha256}, installs to {where}")
    print(f"  signatures ({len(header.signatures)}):")
    release_keys = trust.role_keys(RoleName.RELEASE) if trust else {}
    for signature in header.signatures:
        note = ""
        if trust is not None:
            tally = tally_signatures(MANIFEST_TYPE, header.manifest_bytes, [signature], release_keys)
            note = (
                " (valid release key)"
                if tally.valid
                else (" (does not verify)" if tally.bad else " (unknown key)")
            )
        print(f"    key {signature.keyid}{note}")
    if trust is not None:
        print(
            f"  release threshold of trust root version {trust.version}: {trust.roles[RoleName.RELEASE].threshold}"
        )
    return 0


def _inspect(args: argparse.Namespace) -> int:
    with open_for_reading(args.file, "bundle or trust file") as handle:
        start = handle.read(len(MAGIC))
    if start == MAGIC:
        return _inspect_bundle(args)
    signed = load_trust(args.file)
    root = signed.signed
    if args.json:
        print(json.dumps(json.loads(canonical_bytes(signed)), indent=2, sort_keys=True))
        return 0
    print(
        f"trust root {args.file}: version {root.version}, expires {format_time(root.expires) if root.expires else 'never'}"
    )
    for role_name, role in sorted(root.roles.items()):
        print(f"  role {role_name.value}: threshold {role.threshold} of {len(role.keyids)}")
        for keyid in role.keyids:
            print(f"    {root.keys[keyid].type.value} key {keyid}")
    print(f"  signatures: {', '.join(_short(s.keyid) for s in signed.signatures) or 'none'}")
    return 0


def _load_limits(path: Path | None) -> OtaLimits:
    if path is None:
        return DEFAULT_LIMITS
    data = read_limited(path, 64 * 1024, "limits")
    try:
        return OtaLimits.model_validate_json(data)
    except ValueError as error:
        raise OtaError(f"{path}: invalid limits: {error}") from error


def _verify(args: argparse.Namespace) -> int:
    trust = load_trust(args.trust).signed
    limits = _load_limits(args.limits)
    if not args.strict:
        limits = limits.model_copy(update={"strict_signatures": False})
    verified = verify_bundle_file(
        args.bundle,
        trust,
        hardware_id=args.hardware_id,
        installed_counter=args.installed_counter,
        time_state_path=args.time_state,
        clock=args.now,
        limits=limits,
    )
    manifest = verified.manifest
    print(
        f"ok: {manifest.name} {manifest.version} (release counter {manifest.release_counter}) for "
        f"{args.hardware_id}, signed by {len(verified.signers)} release key(s)"
    )
    return 0


# -- parsers
# ---------------------------------------------------------------------------------------------------


def _add_trust_parsers(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    trust = group.add_parser("trust", help="create, rotate, sign and update trust roots")
    commands = trust.add_subparsers(dest="trust_command", metavar="TRUST_COMMAND", required=True)

    init = commands.add_parser("init", help="create version 1 of a trust root")
    init.add_argument("--key", type=Path, action="append", required=True, help="release public key (repeat)")
    init.add_argument("--threshold", type=int, required=True, help="release signatures required")
    init.add_argument(
        "--root-key", type=Path, action="append", help="root public key (default: the release keys)"
    )
    init.add_argument("--root-threshold", type=int, help="root signatures required (default: --threshold)")
    init.add_argument("--expires", type=_duration, help="validity such as 365d (default: no expiry)")
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
        "--expires", type=_duration, help="validity from now, such as 365d (default: unchanged)"
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
    update.add_argument("--now", type=_time, help="clock reading to use instead of the system clock")
    update.set_defaults(handler=refusing("trust update", _trust_update))


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``ota`` command group to the ``sdv`` parser."""
    ota = subparsers.add_parser(
        "ota",
        help="signed update bundles (keys, trust roots, build, sign, verify) and the ECU's update agent",
    )
    group = ota.add_subparsers(dest="ota_command", metavar="OTA_COMMAND", required=True)

    keygen = group.add_parser("keygen", help="create a signing key pair")
    keygen.add_argument("--private", type=Path, required=True, help="private key file (PEM, mode 0600)")
    keygen.add_argument("--public", type=Path, required=True, help="public key file (PEM)")
    keygen.add_argument("--type", choices=[kind.value for kind in KeyType], default=KeyType.ED25519.value)
    keygen.add_argument("--force", action="store_true", help="replace an existing private key file")
    keygen.set_defaults(handler=_keygen)

    _add_trust_parsers(group)

    build = group.add_parser("build", help="build an unsigned bundle")
    build.add_argument("--name", required=True, type=_matching(NAME_PATTERN), help="the bundle's name")
    build.add_argument(
        "--version", required=True, type=_matching(SEMVER_PATTERN), help="semantic version, such as 1.4.0"
    )
    build.add_argument("--release-counter", type=int, required=True, help="must grow with every release")
    build.add_argument(
        "--hardware-id",
        action="append",
        required=True,
        type=_matching(NAME_PATTERN),
        help="target ECU hardware id (repeat)",
    )
    build.add_argument("--payload", type=Path, action="append", required=True, help="payload file (repeat)")
    build.add_argument(
        "--target",
        action="append",
        metavar="NAME=slot:SLOT|NAME=tree:/PATH",
        help="install target of the payload named NAME (default: *.tar unpacks to /opt/STEM, others to the slot "
        "named by the file name up to its first dot)",
    )
    build.add_argument(
        "--expires", type=_duration, default=_DEFAULT_EXPIRY, help="validity, such as 30d or 2s"
    )
    build.add_argument(
        "--reinstall",
        action="store_true",
        help="may install on a slot group that runs the same release counter (a repair)",
    )
    build.add_argument(
        "--counter-floor",
        action="append",
        type=_counter_floor,
        metavar="GROUP=COUNTER",
        help="once committed, slot group GROUP refuses release counters below COUNTER (repeat)",
    )
    build.add_argument("-o", "--output", type=Path, required=True)
    build.set_defaults(handler=_build)

    sign = group.add_parser("sign", help="add a signature to a bundle, in place")
    sign.add_argument("bundle", type=Path)
    sign.add_argument("--key", type=Path, action="append", required=True, help="private key (repeat)")
    sign.add_argument("--trust", type=Path, help="refuse keys that are not release keys of this trust file")
    sign.set_defaults(handler=_sign)

    inspect = group.add_parser("inspect", help="show a bundle's or trust root's content and signers")
    inspect.add_argument("file", type=Path, help="a bundle or a trust file")
    inspect.add_argument("--trust", type=Path, help="trust file to check the bundle's signatures against")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.set_defaults(handler=_inspect)

    verify = group.add_parser("verify", help="ECU side: check that a bundle would be installed")
    verify.add_argument("bundle", type=Path)
    verify.add_argument("--trust", type=Path, required=True, help="the ECU's trust file")
    verify.add_argument("--hardware-id", required=True, help="the ECU's hardware id")
    verify.add_argument(
        "--installed-counter", type=counter_argument, default=0, help="installed release counter (default 0)"
    )
    verify.add_argument("--time-state", type=Path, help="trusted time file, read and advanced on success")
    verify.add_argument("--now", type=_time, help="clock reading to use instead of the system clock")
    verify.add_argument(
        "--limits", type=Path, help="JSON file of OtaLimits fields (default: built-in limits)"
    )
    verify.add_argument(
        "--lenient-signatures",
        dest="strict",
        action="store_false",
        help="ignore signatures by unknown keys (TUF behaviour) instead of refusing the bundle",
    )
    verify.set_defaults(handler=refusing("verify", _verify))

    ota_record_commands.register(group)
    ota_agent_commands.register(group)
