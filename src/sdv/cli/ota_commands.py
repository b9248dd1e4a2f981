"""The ``sdv ota`` command group: keys and bundles (build, sign, inspect, verify).

Trust roots (``trust init/rotate/sign/update``) live in :mod:`sdv.cli.ota_trust_commands`, the update agent's
commands (``agent``, ``install``, ``status``, ``activate``, ``mark-good``, ``rollback``, ``cancel``, ``push``) in
:mod:`sdv.cli.ota_agent_commands`, its records (``report``, ``log``) in :mod:`sdv.cli.ota_record_commands`; all
join this group.

Server and integrator side: ``keygen``, ``trust init``, ``trust rotate``, ``trust sign``, ``build``, ``sign``,
``inspect``. ECU side: ``verify``, ``trust update`` (a local trust file, or a running agent with ``--target``).

Exit codes as for every ``sdv`` command (docs/cli.md): 0 on success; 1 when a bundle, trust root or report is
refused (the reason on stderr, prefixed with the command); 2 when the command cannot run as given; 3 when the
agent cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from sdv.cli import ota_agent_commands, ota_index_commands, ota_record_commands, ota_trust_commands
from sdv.cli.ota_arguments import DEFAULT_EXPIRY, duration_argument, matching, short_keyid, time_argument
from sdv.cli.ota_refusals import counter_argument, refusing
from sdv.durations import parse_duration
from sdv.errors import OtaError, VerificationError
from sdv.ota.bundle.canonical import canonical_bytes, format_time
from sdv.ota.bundle.compression import ALGORITHMS, Algorithm
from sdv.ota.bundle.config import DEFAULT_LIMITS, OtaLimits
from sdv.ota.bundle.format import MAGIC
from sdv.ota.bundle.keys import KeyType, generate_private_key
from sdv.ota.bundle.manifest import (
    MANIFEST_TYPE,
    NAME_PATTERN,
    SEMVER_PATTERN,
    FileTreeTarget,
    PayloadTarget,
    SlotImageTarget,
)
from sdv.ota.bundle.store import (
    PayloadSource,
    build_bundle,
    load_private_key,
    load_trust,
    open_for_reading,
    read_bundle_header,
    read_limited,
    sign_bundle,
    verify_bundle_file,
    write_atomically,
    write_private_key,
)
from sdv.ota.bundle.trust import (
    RoleName,
    tally_signatures,
)
from sdv.ota.bundle.vehicle_terms import load_vehicle_terms

__all__ = ["register"]


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


_COMPRESS_CHOICES = (*ALGORITHMS, "none")


def _parse_compression(specs: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The default compression and the per-payload ones of ``--compress ALG`` and ``--compress NAME=ALG``."""
    default, named = "none", {}
    for spec in specs:
        name, separator, algorithm = spec.rpartition("=")
        if algorithm not in _COMPRESS_CHOICES or (separator and not name):
            raise OtaError(
                f"--compress {spec!r}: expected ALGORITHM or NAME=ALGORITHM, ALGORITHM one of "
                f"{', '.join(_COMPRESS_CHOICES)}"
            )
        if separator:
            named[name] = algorithm
        else:
            default = algorithm
    return default, named


def _build(args: argparse.Namespace) -> int:
    targets = _parse_targets(args.target or [])
    default_compression, compressions = _parse_compression(args.compress or [])
    sources = []
    for path in args.payload:
        if not path.is_file():
            raise OtaError(f"payload {path} is not a file")
        target = targets.pop(path.name) if path.name in targets else _default_target(path)
        algorithm = compressions.pop(path.name, default_compression)
        sources.append(
            PayloadSource(
                path, path.name, target, None if algorithm == "none" else cast(Algorithm, algorithm)
            )
        )
    if targets:
        raise OtaError(f"--target names no payload: {', '.join(sorted(targets))}")
    if compressions:
        raise OtaError(f"--compress names no payload: {', '.join(sorted(compressions))}")
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
            vehicle=None if args.vehicle is None else load_vehicle_terms(args.vehicle),
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
                    f"{path}: key {short_keyid(key.keyid)} is not a release key of {args.trust}; "
                    "ECUs trusting it would ignore this signature"
                )
    else:
        print(
            "note: keys not checked against a trust root (pass --trust FILE to check them)", file=sys.stderr
        )
    for key in keys:
        header = sign_bundle(args.bundle, key)
        print(
            f"signed {args.bundle} with key {short_keyid(key.keyid)}; {len(header.signatures)} signature(s)"
        )
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
        if payload.compression is not None:
            packed = payload.compression
            print(
                f"      compressed with {packed.algorithm}: decompresses to {packed.size} bytes, "
                f"sha256 {packed.sha256}"
            )
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
    print(f"  signatures: {', '.join(short_keyid(s.keyid) for s in signed.signatures) or 'none'}")
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

    ota_trust_commands.register(group)
    ota_index_commands.register(group)

    build = group.add_parser("build", help="build an unsigned bundle")
    build.add_argument("--name", required=True, type=matching(NAME_PATTERN), help="the bundle's name")
    build.add_argument(
        "--version", required=True, type=matching(SEMVER_PATTERN), help="semantic version, such as 1.4.0"
    )
    build.add_argument("--release-counter", type=int, required=True, help="must grow with every release")
    build.add_argument(
        "--hardware-id",
        action="append",
        required=True,
        type=matching(NAME_PATTERN),
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
        "--compress",
        action="append",
        metavar="ALG|NAME=ALG",
        help="store payloads compressed: ALG (zstd, xz or none) for every payload, NAME=ALG for the payload "
        "named NAME (repeat; default none)",
    )
    build.add_argument(
        "--expires", type=duration_argument, default=DEFAULT_EXPIRY, help="validity, such as 30d or 2s"
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
    build.add_argument(
        "--vehicle",
        type=Path,
        metavar="FILE",
        help="YAML file of what the bundle asks of the vehicle: preconditions, energy budget, user notice",
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
    verify.add_argument("--now", type=time_argument, help="clock reading to use instead of the system clock")
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
