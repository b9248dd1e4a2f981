"""The ``sdv ota`` commands as servers and ECUs script them: happy paths, output and exit codes."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

from conftest import BuildBundle, Keys, ok, run_cli


def test_verify_accepts_a_bundle_signed_by_a_threshold(build_bundle: BuildBundle, keys: Keys) -> None:
    bundle = build_bundle()
    out = ok(
        "ota", "verify", bundle, "--trust", keys.trust, "--hardware-id", "ecu-a", "--installed-counter", "4"
    )
    assert "ok: demo 1.5.0 (release counter 5) for ecu-a, signed by 2 release key(s)" in out


def test_verify_as_a_subprocess_reports_the_reason_on_stderr(build_bundle: BuildBundle, keys: Keys) -> None:
    bundle = build_bundle(signers=("a",))
    command = [sys.executable, "-m", "sdv.cli.main", "ota", "verify", str(bundle), "--trust", str(keys.trust)]
    result = subprocess.run([*command, "--hardware-id", "ecu-a"], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert "refused" in result.stderr
    assert "1 distinct valid release signature(s), threshold is 2" in result.stderr
    assert result.stdout == ""


def test_keygen_writes_pem_files_and_protects_the_private_key(tmp_path: Path) -> None:
    private, public = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    out = ok("ota", "keygen", "--private", private, "--public", public, "--type", "ecdsa-p256")
    assert out.startswith("ecdsa-p256 key ")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"BEGIN PRIVATE KEY" in private.read_bytes()
    assert b"BEGIN PUBLIC KEY" in public.read_bytes()
    again = run_cli("ota", "keygen", "--private", private, "--public", public)
    assert again.code == 2
    assert "--force" in again.err


def test_sign_twice_with_one_key_keeps_one_signature(build_bundle: BuildBundle, keys: Keys) -> None:
    bundle = build_bundle(signers=("e", "e"))
    out = ok("ota", "inspect", bundle, "--json")
    assert len(json.loads(out)["signatures"]) == 1


def test_inspect_shows_content_and_signers(build_bundle: BuildBundle, keys: Keys) -> None:
    bundle = build_bundle(signers=("a", "x"))
    out = ok("ota", "inspect", bundle, "--trust", keys.trust)
    assert "release counter: 5" in out
    assert "rootfs.img: 49169 bytes" in out
    assert "installs to slot rootfs" in out
    assert "installs to file tree at /opt/app" in out
    assert "(valid release key)" in out
    assert "(unknown key)" in out
    trust_out = ok("ota", "inspect", keys.trust)
    assert "role release: threshold 2 of 3" in trust_out


def test_build_honours_explicit_targets(tmp_path: Path, payloads: dict[str, Path]) -> None:
    bundle = tmp_path / "b.sdvota"
    ok(
        "ota", "build", "--name", "t", "--version", "2.0.0-rc.1+build.5", "--release-counter", "9",
        "--hardware-id", "ecu-a", "--hardware-id", "ecu-b", "--payload", payloads["image"],
        "--payload", payloads["tree"], "--target", "rootfs.img=slot:system_b", "--target", "app.tar=tree:/srv/app",
        "-o", bundle,
    )  # fmt: skip
    manifest = json.loads(ok("ota", "inspect", bundle, "--json"))["manifest"]
    assert manifest["payloads"][0]["target"] == {"kind": "slot-image", "slot": "system_b"}
    assert manifest["payloads"][1]["target"] == {"kind": "file-tree", "path": "/srv/app"}
    assert manifest["hardware_ids"] == ["ecu-a", "ecu-b"]


def test_build_refuses_bad_input(tmp_path: Path, payloads: dict[str, Path]) -> None:
    base = [
        "ota",
        "build",
        "--name",
        "t",
        "--release-counter",
        "1",
        "--hardware-id",
        "h",
        "-o",
        tmp_path / "b",
    ]
    bad_version = run_cli(*base, "--version", "1.0", "--payload", payloads["image"])
    assert bad_version.code == 2
    assert "version" in bad_version.err
    missing = run_cli(*base, "--version", "1.0.0", "--payload", tmp_path / "nope.img")
    assert missing.code == 2
    assert "not a file" in missing.err
    bad_expiry = run_cli(*base, "--version", "1.0.0", "--payload", payloads["image"], "--expires", "soon")
    assert bad_expiry.code == 2
    assert not (tmp_path / "b").exists()


def test_time_state_is_advanced_and_never_goes_back(
    build_bundle: BuildBundle, keys: Keys, tmp_path: Path
) -> None:
    bundle = build_bundle(expires="1h")
    state = tmp_path / "time.json"
    ok("ota", "verify", bundle, "--trust", keys.trust, "--hardware-id", "ecu-a", "--time-state", state)
    created = json.loads(ok("ota", "inspect", bundle, "--json"))["manifest"]["created"]
    assert json.loads(state.read_text())["latest"] == created
    # A clock set back to 2001 is not trusted: the floor still applies and the bundle still verifies.
    ok(
        "ota", "verify", bundle, "--trust", keys.trust, "--hardware-id", "ecu-a", "--time-state", state,
        "--now", "2001-01-01T00:00:00Z",
    )  # fmt: skip
    assert json.loads(state.read_text())["latest"] == created


def test_schema_file_matches_the_model() -> None:
    from sdv.ota.bundle.schema import schema_text

    committed = Path(__file__).resolve().parents[2] / "ota" / "manifest.schema.json"
    assert committed.read_text(encoding="utf-8") == schema_text(), (
        "ota/manifest.schema.json is stale; regenerate it with: python -m sdv.ota.bundle.schema ota/manifest.schema.json"
    )


def test_build_refuses_an_unsafe_file_tree(tmp_path: Path) -> None:
    from conftest import entry, make_tar

    archive = make_tar(tmp_path / "evil.tar", [(entry("../outside"), b"x")])
    result = run_cli(
        "ota", "build", "--name", "t", "--version", "1.0.0", "--release-counter", "1", "--hardware-id", "h",
        "--payload", archive, "-o", tmp_path / "b.sdvota",
    )  # fmt: skip
    assert result.code == 2
    assert "entry path '../outside' contains '..'" in result.err
    assert not (tmp_path / "b.sdvota").exists()
    assert list(tmp_path.iterdir()) == [archive], "no temporary file is left behind"
