"""The attack suite: one table row per threat of Uptane's threat model (and the archive threats of file trees).

Every row builds a real bundle with the ``sdv ota`` CLI, attacks it (or the ECU's view of the world), and then
checks both that ``sdv ota verify`` exits 1 with the reason on stderr and that the library raises the specific
error. A control row checks that the unattacked bundle verifies, so a broken fixture cannot pass as a defence.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conftest import BuildBundle, Keys, entry, make_tar, ok, run_cli
from sdv.errors import VerificationError
from sdv.ota import (
    BadSignatureError,
    BundleFormatError,
    ExpiredError,
    HardwareIdMismatchError,
    HashMismatchError,
    LengthMismatchError,
    OtaLimits,
    RollbackError,
    SizeLimitError,
    ThresholdNotMetError,
    UnsafeArchiveEntryError,
)
from sdv.ota.bundle.canonical import canonical_bytes, parse_time
from sdv.ota.bundle.format import BundleHeader
from sdv.ota.bundle.store import load_private_key, load_trust, read_bundle_header, verify_bundle_file
from sdv.ota.bundle.trusted_time import TimeState


@dataclass
class Scenario:
    """What the ECU is asked to verify, and with which trusted state."""

    bundle: Path
    trust: Path
    hardware_id: str = "ecu-a"
    installed_counter: int = 0
    now: datetime | None = None
    time_state: Path | None = None
    limits: OtaLimits | None = None
    cli_extra: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    tmp_path: Path
    keys: Keys
    build: BuildBundle

    def scenario(self, bundle: Path) -> Scenario:
        return Scenario(bundle=bundle, trust=self.keys.trust)


def _payload_offset(bundle: Path) -> int:
    return read_bundle_header(bundle).encoded_length


def _rewrite_header(bundle: Path, change: Callable[[BundleHeader], BundleHeader]) -> None:
    data = bundle.read_bytes()
    header = read_bundle_header(bundle)
    rest = data[header.encoded_length :]
    bundle.write_bytes(change(header).encode() + rest)


def _tree_bundle(ctx: Context, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """A bundle built with the CLI whose file tree is then swapped for a hostile archive and re-signed.

    ``sdv ota build`` and ``sdv ota sign`` refuse hostile archives themselves, so the attack models a compromised
    build pipeline that signs whatever it is given: the release keys sign, and the ECU must still refuse.
    """
    bundle = ctx.build(files=[make_tar(ctx.tmp_path / "app.tar", [(entry("placeholder"), b"")])])
    hostile = make_tar(ctx.tmp_path / "evil.tar", members).read_bytes()
    header = read_bundle_header(bundle)
    manifest = header.parse_manifest(str(bundle))
    payload = manifest.payloads[0].model_copy(
        update={"size": len(hostile), "sha256": hashlib.sha256(hostile).hexdigest()}
    )
    forged = BundleHeader.for_manifest(manifest.model_copy(update={"payloads": [payload]}))
    for signer in ("a", "e"):
        forged = forged.with_signature(load_private_key(ctx.keys.private(signer)))
    bundle.write_bytes(forged.encode() + hostile)
    return bundle


# -- attacks -----------------------------------------------------------------------------------------------------


def flipped_payload_byte(ctx: Context) -> Scenario:
    bundle = ctx.build()
    data = bytearray(bundle.read_bytes())
    data[_payload_offset(bundle) + 1000] ^= 0x01
    bundle.write_bytes(bytes(data))
    return ctx.scenario(bundle)


def manifest_edited_after_signing(ctx: Context) -> Scenario:
    bundle = ctx.build()
    data = bundle.read_bytes()
    assert data.count(b'"release_counter":5') == 1
    bundle.write_bytes(data.replace(b'"release_counter":5', b'"release_counter":9'))
    return Scenario(bundle, ctx.keys.trust, installed_counter=6)


def signed_by_unknown_key(ctx: Context) -> Scenario:
    return ctx.scenario(ctx.build(signers=("x",)))


def unknown_key_with_lenient_policy(ctx: Context) -> Scenario:
    scenario = ctx.scenario(ctx.build(signers=("a", "x")))
    scenario.limits = OtaLimits(strict_signatures=False)
    scenario.cli_extra = ["--lenient-signatures"]
    return scenario


def fewer_signatures_than_threshold(ctx: Context) -> Scenario:
    return ctx.scenario(ctx.build(signers=("a",)))


def same_key_counted_twice(ctx: Context) -> Scenario:
    bundle = ctx.build(signers=("e",))
    key = load_private_key(ctx.keys.private("e"))

    def add_second_signature(header: BundleHeader) -> BundleHeader:
        second = key.sign(header.signed_message())  # ECDSA: a different, equally valid signature
        assert second not in header.signatures
        return BundleHeader(header.manifest_bytes, (*header.signatures, second))

    _rewrite_header(bundle, add_second_signature)
    return ctx.scenario(bundle)


def expired_bundle(ctx: Context) -> Scenario:
    scenario = ctx.scenario(ctx.build(expires="2s"))
    scenario.now = datetime.now(UTC) + timedelta(hours=1)
    return scenario


def expired_bundle_with_clock_set_back(ctx: Context) -> Scenario:
    bundle = ctx.build(expires="1h")
    state = ctx.tmp_path / "time.json"
    state.write_bytes(canonical_bytes(TimeState(latest=parse_time("2999-01-01T00:00:00Z"))))
    scenario = ctx.scenario(bundle)
    scenario.time_state = state
    scenario.now = datetime.now(UTC)  # the clock claims "now", but the ECU securely saw a much later time
    return scenario


def replayed_older_bundle(ctx: Context) -> Scenario:
    return Scenario(ctx.build(counter=5), ctx.keys.trust, installed_counter=7)


def replayed_installed_bundle(ctx: Context) -> Scenario:
    return Scenario(ctx.build(counter=5), ctx.keys.trust, installed_counter=5)


def wrong_hardware_id(ctx: Context) -> Scenario:
    return Scenario(ctx.build(hardware_ids=("ecu-a", "ecu-c")), ctx.keys.trust, hardware_id="ecu-b")


def oversized_payload(ctx: Context) -> Scenario:
    scenario = ctx.scenario(ctx.build())
    scenario.limits = OtaLimits(max_payload_bytes=4096)
    limits_file = ctx.tmp_path / "limits.json"
    limits_file.write_text('{"max_payload_bytes": 4096}')
    scenario.cli_extra = ["--limits", str(limits_file)]
    return scenario


def endless_data_appended(ctx: Context) -> Scenario:
    bundle = ctx.build()
    with bundle.open("ab") as handle:
        handle.write(bytes(1024 * 1024))
    return ctx.scenario(bundle)


def oversized_manifest_length(ctx: Context) -> Scenario:
    bundle = ctx.build()
    data = bytearray(bundle.read_bytes())
    data[8:12] = (2**31).to_bytes(4, "big")
    bundle.write_bytes(bytes(data))
    return ctx.scenario(bundle)


def truncated_file(ctx: Context) -> Scenario:
    bundle = ctx.build()
    data = bundle.read_bytes()
    bundle.write_bytes(data[:-100])
    return ctx.scenario(bundle)


def truncated_inside_header(ctx: Context) -> Scenario:
    bundle = ctx.build()
    data = bundle.read_bytes()
    bundle.write_bytes(data[: _payload_offset(bundle) - 10])
    return ctx.scenario(bundle)


def path_traversal(ctx: Context) -> Scenario:
    return ctx.scenario(_tree_bundle(ctx, [(entry("docs/../../etc/cron.d/evil"), b"* * * * * root sh\n")]))


def absolute_path(ctx: Context) -> Scenario:
    return ctx.scenario(_tree_bundle(ctx, [(entry("/etc/passwd"), b"root::0:0::/:/bin/sh\n")]))


def symlink_escaping_the_tree(ctx: Context) -> Scenario:
    members = [(entry("lib", tarfile.DIRTYPE), b""), (entry("lib/x", tarfile.SYMTYPE, link="../../etc"), b"")]
    return ctx.scenario(_tree_bundle(ctx, members))


def symlink_chain_escaping_the_tree(ctx: Context) -> Scenario:
    # lexically sub/x -> sub/l/.. stays inside, but sub/l is itself a link to the root, so x escapes
    members = [
        (entry("sub", tarfile.DIRTYPE), b""),
        (entry("sub/x", tarfile.SYMTYPE, link="l/.."), b""),
        (entry("sub/l", tarfile.SYMTYPE, link=".."), b""),
    ]
    return ctx.scenario(_tree_bundle(ctx, members))


def absolute_symlink(ctx: Context) -> Scenario:
    return ctx.scenario(_tree_bundle(ctx, [(entry("shadow", tarfile.SYMTYPE, link="/etc/shadow"), b"")]))


def write_through_symlink(ctx: Context) -> Scenario:
    members = [
        (entry("conf", tarfile.SYMTYPE, link="."), b""),
        (entry("conf/app.conf"), b"x=1\n"),
    ]
    return ctx.scenario(_tree_bundle(ctx, members))


def hard_link_escaping_the_tree(ctx: Context) -> Scenario:
    return ctx.scenario(_tree_bundle(ctx, [(entry("passwd", tarfile.LNKTYPE, link="../../etc/passwd"), b"")]))


def device_file(ctx: Context) -> Scenario:
    return ctx.scenario(_tree_bundle(ctx, [(entry("dev/mem", tarfile.CHRTYPE), b"")]))


def duplicate_names(ctx: Context) -> Scenario:
    return ctx.scenario(
        _tree_bundle(ctx, [(entry("app.conf"), b"safe=1\n"), (entry("./app.conf"), b"evil=1\n")])
    )


def setuid_binary(ctx: Context) -> Scenario:
    return ctx.scenario(_tree_bundle(ctx, [(entry("bin/su", mode=0o4755), b"\x7fELF")]))


def key_rotated_away(ctx: Context) -> Scenario:
    bundle = ctx.build(signers=("a", "e"))
    keys = ctx.keys
    trust = ctx.tmp_path / "ecu-trust.json"
    shutil.copyfile(keys.trust, trust)
    new_root = ctx.tmp_path / "root-v2.json"
    ok(
        "ota", "trust", "rotate", keys.trust, "--key", keys.public("b"), "--key", keys.public("e"),
        "--root-key", keys.public("b"), "--root-key", keys.public("e"), "--threshold", "2", "--root-threshold", "2",
        "--sign-key", keys.private("a"), "--sign-key", keys.private("b"), "--sign-key", keys.private("e"),
        "-o", new_root,
    )  # fmt: skip
    ok("ota", "trust", "update", new_root, "--trust", trust)
    return Scenario(bundle, trust)


def key_rotated_away_lenient(ctx: Context) -> Scenario:
    scenario = key_rotated_away(ctx)
    scenario.limits = OtaLimits(strict_signatures=False)
    scenario.cli_extra = ["--lenient-signatures"]
    return scenario


ATTACKS: list[tuple[str, Callable[[Context], Scenario], type[VerificationError], str]] = [
    (
        "arbitrary software: flipped payload byte",
        flipped_payload_byte,
        HashMismatchError,
        "payload rootfs.img: SHA-256",
    ),
    ("manifest edited after signing", manifest_edited_after_signing, BadSignatureError, "does not verify"),
    (
        "signature by an unknown key",
        signed_by_unknown_key,
        ThresholdNotMetError,
        "1 signature(s) by keys not listed for role release",
    ),
    ("unknown key, lenient policy", unknown_key_with_lenient_policy, ThresholdNotMetError, "threshold is 2"),
    (
        "fewer signatures than the threshold",
        fewer_signatures_than_threshold,
        ThresholdNotMetError,
        "threshold is 2",
    ),
    (
        "same key counted twice",
        same_key_counted_twice,
        ThresholdNotMetError,
        "signed more than once and counts once",
    ),
    ("freeze: expired bundle", expired_bundle, ExpiredError, "expired at"),
    (
        "freeze: clock set back",
        expired_bundle_with_clock_set_back,
        ExpiredError,
        "trusted time 2999-01-01T00:00:00Z",
    ),
    ("rollback: replayed older bundle", replayed_older_bundle, RollbackError, "not above the installed 7"),
    (
        "rollback: replayed installed bundle",
        replayed_installed_bundle,
        RollbackError,
        "not above the installed 5",
    ),
    ("mix-and-match: wrong hardware id", wrong_hardware_id, HardwareIdMismatchError, "this ECU is ecu-b"),
    ("endless data: oversized payload", oversized_payload, SizeLimitError, "exceeds the limit of 4096"),
    (
        "endless data: bytes appended",
        endless_data_appended,
        LengthMismatchError,
        "data follows the last payload",
    ),
    (
        "endless data: huge manifest length",
        oversized_manifest_length,
        SizeLimitError,
        "manifest of 2147483648 bytes",
    ),
    ("partial bundle: truncated file", truncated_file, LengthMismatchError, "truncated"),
    ("partial bundle: truncated header", truncated_inside_header, BundleFormatError, "truncated"),
    ("path traversal", path_traversal, UnsafeArchiveEntryError, "contains '..'"),
    ("absolute path", absolute_path, UnsafeArchiveEntryError, "is an absolute path"),
    (
        "link escaping the tree",
        symlink_escaping_the_tree,
        UnsafeArchiveEntryError,
        "lib/x -> ../../etc leaves the tree",
    ),
    (
        "link chain escaping the tree",
        symlink_chain_escaping_the_tree,
        UnsafeArchiveEntryError,
        "leaves the tree",
    ),
    ("absolute link", absolute_symlink, UnsafeArchiveEntryError, "points to the absolute path '/etc/shadow'"),
    (
        "write through a link",
        write_through_symlink,
        UnsafeArchiveEntryError,
        "lies below the symbolic link conf",
    ),
    ("hard link escaping the tree", hard_link_escaping_the_tree, UnsafeArchiveEntryError, "contains '..'"),
    ("device file", device_file, UnsafeArchiveEntryError, "dev/mem is a character device"),
    ("duplicate names", duplicate_names, UnsafeArchiveEntryError, "app.conf appears more than once"),
    ("set-user-id binary", setuid_binary, UnsafeArchiveEntryError, "set-user-id"),
    ("key rotated away", key_rotated_away, ThresholdNotMetError, "1 distinct valid"),
    ("key rotated away, lenient policy", key_rotated_away_lenient, ThresholdNotMetError, "1 distinct valid"),
]


def _cli_arguments(scenario: Scenario) -> list[str]:
    arguments = [
        "ota", "verify", str(scenario.bundle), "--trust", str(scenario.trust),
        "--hardware-id", scenario.hardware_id, "--installed-counter", str(scenario.installed_counter),
    ]  # fmt: skip
    if scenario.now is not None:
        arguments += ["--now", scenario.now.isoformat()]
    if scenario.time_state is not None:
        arguments += ["--time-state", str(scenario.time_state)]
    return arguments + scenario.cli_extra


def _verify_with_library(scenario: Scenario) -> None:
    verify_bundle_file(
        scenario.bundle,
        load_trust(scenario.trust).signed,
        hardware_id=scenario.hardware_id,
        installed_counter=scenario.installed_counter,
        time_state_path=scenario.time_state,
        clock=scenario.now,
        limits=scenario.limits or OtaLimits(),
    )


@pytest.mark.parametrize(("threat", "attack", "error", "reason"), ATTACKS, ids=[row[0] for row in ATTACKS])
def test_attack_is_refused(
    threat: str,
    attack: Callable[[Context], Scenario],
    error: type[VerificationError],
    reason: str,
    tmp_path: Path,
    keys: Keys,
    build_bundle: BuildBundle,
) -> None:
    scenario = attack(Context(tmp_path, keys, build_bundle))
    result = run_cli(*_cli_arguments(scenario))
    assert result.code == 1, f"{threat}: exit code {result.code}, stderr {result.err!r}"
    assert result.err.startswith("sdv ota verify: refused: ")
    assert reason in result.err
    assert result.out == ""
    with pytest.raises(error) as raised:
        _verify_with_library(scenario)
    assert reason in str(raised.value)


def test_control_unattacked_bundle_verifies(tmp_path: Path, keys: Keys, build_bundle: BuildBundle) -> None:
    scenario = Scenario(build_bundle(), keys.trust, installed_counter=4)
    result = run_cli(*_cli_arguments(scenario))
    assert result.code == 0, result.err
    _verify_with_library(scenario)


def test_failed_verification_does_not_advance_the_time_state(
    tmp_path: Path, keys: Keys, build_bundle: BuildBundle
) -> None:
    bundle = build_bundle(signers=("a",))
    state = tmp_path / "time.json"
    result = run_cli(
        "ota", "verify", bundle, "--trust", keys.trust, "--hardware-id", "ecu-a", "--time-state", state
    )
    assert result.code == 1
    assert not state.exists()
