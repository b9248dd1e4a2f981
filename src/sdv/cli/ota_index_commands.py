"""``sdv ota index build/sign``: the signed index a plain HTTP(S) server offers to agents polling it
(``sdv ota agent --index URL``; format in :mod:`sdv.ota.fleet.index`)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from sdv.cli.ota_arguments import DEFAULT_EXPIRY, duration_argument
from sdv.durations import parse_duration
from sdv.files import write_atomically
from sdv.ota.bundle.canonical import canonical_bytes, format_time
from sdv.ota.bundle.store import hash_file, load_private_key, read_bundle_header, read_limited
from sdv.ota.errors import OtaError
from sdv.ota.fleet.index import BundleIndex, IndexEntry, SignedIndex, parse_index, sign_index

__all__ = ["register"]

_MAX_INDEX_BYTES = 16 * 1024 * 1024  # what a hand-made index may hold; agents bound theirs by max_json_bytes


def _build(args: argparse.Namespace) -> int:
    entries: list[IndexEntry] = []
    for path in args.bundle:
        manifest = read_bundle_header(path).parse_manifest(str(path))
        size, digest = hash_file(path)
        url = f"{args.base_url.rstrip('/')}/{path.name}" if args.base_url else path.name
        for hardware_id in manifest.hardware_ids:
            entries.append(
                IndexEntry(
                    hardware_id=hardware_id,
                    name=manifest.name,
                    version=manifest.version,
                    release_counter=manifest.release_counter,
                    url=url,
                    size=size,
                    sha256=digest,
                )
            )
    ids = [entry.hardware_id for entry in entries]
    if len(set(ids)) != len(ids):
        repeated = sorted({hardware_id for hardware_id in ids if ids.count(hardware_id) > 1})
        raise OtaError(
            f"two bundles for hardware id {repeated[0]}: an index names one bundle per hardware id"
        )
    now = datetime.now(UTC).replace(microsecond=0)
    index = BundleIndex(version=args.version, expires=now + parse_duration(args.expires), bundles=entries)
    write_atomically(args.output, canonical_bytes(SignedIndex(signed=index)))
    print(
        f"built {args.output}: index version {index.version}, {len(entries)} bundle(s), "
        f"expires {format_time(index.expires)}; unsigned"
    )
    return 0


def _sign(args: argparse.Namespace) -> int:
    index = parse_index(
        read_limited(args.index, _MAX_INDEX_BYTES, "index"), str(args.index), _MAX_INDEX_BYTES
    )
    key = load_private_key(args.key)
    signed = sign_index(index, key)
    write_atomically(args.index, canonical_bytes(signed))
    print(f"signed {args.index} with key {key.keyid[:16]} ({len(signed.signatures)} signature(s))")
    return 0


def register(group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sdv ota index`` to the ``sdv ota`` group."""
    index = group.add_parser("index", help="build and sign the bundle index agents poll (--index URL)")
    commands = index.add_subparsers(dest="index_command", required=True)
    build = commands.add_parser("build", help="an unsigned index of bundles, one per hardware id")
    build.add_argument("--bundle", type=Path, action="append", required=True, help="a bundle file (repeat)")
    build.add_argument(
        "--version", type=int, required=True, help="the index version; must grow with every index"
    )
    build.add_argument("--base-url", help="the bundles' URL prefix (default: beside the index)")
    build.add_argument(
        "--expires", type=duration_argument, default=DEFAULT_EXPIRY, help="validity, such as 7d or 12h"
    )
    build.add_argument("-o", "--output", type=Path, required=True, help="the index file to write")
    build.set_defaults(handler=_build)
    sign = commands.add_parser("sign", help="add a release key's signature to an index, in place")
    sign.add_argument("index", type=Path)
    sign.add_argument("--key", type=Path, required=True, help="a release key (private, PEM)")
    sign.set_defaults(handler=_sign)
