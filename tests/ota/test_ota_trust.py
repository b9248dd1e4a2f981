"""Trust root rotation (TUF 5.3.4-5.3.5), through the CLI and the library."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import BuildBundle, Keys, ok, run_cli
from sdv.ota import BadSignatureError, RollbackError, RotationError, ThresholdNotMetError
from sdv.ota.bundle.store import load_private_key, load_trust
from sdv.ota.bundle.trust import verify_rotation


def _rotate(keys: Keys, source: Path, output: Path, *options: str | Path) -> Path:
    ok("ota", "trust", "rotate", source, *options, "-o", output)
    return output


@pytest.fixture
def ecu_trust(tmp_path: Path, keys: Keys) -> Path:
    trust = tmp_path / "ecu-trust.json"
    shutil.copyfile(keys.trust, trust)
    return trust


def test_rotation_chain_is_applied_in_order(tmp_path: Path, keys: Keys, ecu_trust: Path) -> None:
    v2 = _rotate(
        keys, keys.trust, tmp_path / "v2.json", "--root-key", keys.public("b"), "--root-key", keys.public("x"),
        "--root-threshold", "2", "--sign-key", keys.private("a"), "--sign-key", keys.private("b"),
        "--sign-key", keys.private("x"),
    )  # fmt: skip
    v3 = _rotate(keys, v2, tmp_path / "v3.json", "--threshold", "1", "--sign-key", keys.private("b"))
    ok("ota", "trust", "sign", v3, "--key", keys.private("x"))
    out = ok("ota", "trust", "update", v2, v3, "--trust", ecu_trust)
    assert "from version 1 to 3" in out
    root = load_trust(ecu_trust).signed
    assert root.version == 3
    assert root.roles["release"].threshold == 1


@pytest.mark.parametrize(
    ("signers", "reason"),
    [
        (
            ("b", "x"),
            "signatures of the trusted version 1",
        ),  # only one old root key: a stolen new key is not enough
        (("a", "b"), "signatures of its own root keys"),  # the new root's own keys must accept the role too
        (("a",), "signatures of the trusted version 1"),
    ],
)
def test_rotation_needs_a_threshold_of_old_and_new_root_keys(
    tmp_path: Path, keys: Keys, ecu_trust: Path, signers: tuple[str, ...], reason: str
) -> None:
    options: list[str | Path] = ["--root-key", keys.public("x"), "--root-key", keys.public("b")]
    options += ["--root-threshold", "2"]
    for signer in signers:
        options += ["--sign-key", keys.private(signer)]
    v2 = _rotate(keys, keys.trust, tmp_path / "v2.json", *options)
    before = ecu_trust.read_bytes()
    result = run_cli("ota", "trust", "update", v2, "--trust", ecu_trust)
    assert result.code == 1
    assert reason in result.err
    assert ecu_trust.read_bytes() == before, "a refused rotation leaves the trust file untouched"
    with pytest.raises(ThresholdNotMetError):
        verify_rotation(load_trust(keys.trust).signed, load_trust(v2), "v2")


def test_rotation_refuses_skipped_and_replayed_versions(tmp_path: Path, keys: Keys, ecu_trust: Path) -> None:
    sign = ["--sign-key", keys.private("a"), "--sign-key", keys.private("b")]
    v2 = _rotate(keys, keys.trust, tmp_path / "v2.json", *sign)
    v3 = _rotate(keys, v2, tmp_path / "v3.json", *sign)
    with pytest.raises(RotationError, match="skips versions"):
        verify_rotation(load_trust(keys.trust).signed, load_trust(v3), "v3")
    ok("ota", "trust", "update", v2, "--trust", ecu_trust)
    replay = run_cli("ota", "trust", "update", v2, "--trust", ecu_trust)
    assert replay.code == 1
    assert "not newer than the trusted version 2" in replay.err
    with pytest.raises(RollbackError):
        verify_rotation(load_trust(ecu_trust).signed, load_trust(v2), "v2")


def test_rotation_refuses_a_tampered_root(tmp_path: Path, keys: Keys) -> None:
    v2 = _rotate(
        keys,
        keys.trust,
        tmp_path / "v2.json",
        "--sign-key",
        keys.private("a"),
        "--sign-key",
        keys.private("b"),
    )
    document = json.loads(v2.read_bytes())
    document["signed"]["roles"]["release"]["threshold"] = 1
    v2.write_bytes(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())
    with pytest.raises(BadSignatureError):
        verify_rotation(load_trust(keys.trust).signed, load_trust(v2), "v2")


def test_dropped_root_key_cannot_sign_the_next_rotation(tmp_path: Path, keys: Keys) -> None:
    v2 = _rotate(
        keys, keys.trust, tmp_path / "v2.json", "--root-key", keys.public("b"), "--root-key", keys.public("e"),
        "--sign-key", keys.private("a"), "--sign-key", keys.private("b"), "--sign-key", keys.private("e"),
    )  # fmt: skip
    trusted = verify_rotation(load_trust(keys.trust).signed, load_trust(v2), "v2")
    v3 = _rotate(
        keys, v2, tmp_path / "v3.json", "--sign-key", keys.private("a"), "--sign-key", keys.private("b")
    )
    with pytest.raises(Exception, match="does not list"):
        verify_rotation(trusted, load_trust(v3), "v3")


def _dual_signing_setup(tmp_path: Path, keys: Keys, ecu_trust: Path) -> tuple[Path, dict[str, Path]]:
    """Trust root version 2 replaces the release keys a, b, e with n1, n2 (threshold 2; root keys unchanged)."""
    new_keys = {}
    for name in ("n1", "n2"):
        new_keys[name] = tmp_path / f"{name}.pem"
        ok("ota", "keygen", "--private", new_keys[name], "--public", tmp_path / f"{name}.pub")
    v2 = _rotate(
        keys, keys.trust, tmp_path / "v2.json", "--key", tmp_path / "n1.pub", "--key", tmp_path / "n2.pub",
        "--threshold", "2", "--sign-key", keys.private("a"), "--sign-key", keys.private("b"),
    )  # fmt: skip
    new_trust = tmp_path / "new-ecu-trust.json"
    shutil.copyfile(ecu_trust, new_trust)
    ok("ota", "trust", "update", v2, "--trust", new_trust)
    return new_trust, new_keys


def test_a_bundle_signed_by_old_and_new_release_keys_verifies_on_old_and_new_roots(
    tmp_path: Path, keys: Keys, ecu_trust: Path, build_bundle: BuildBundle
) -> None:
    new_trust, new_keys = _dual_signing_setup(tmp_path, keys, ecu_trust)
    dual = build_bundle(signers=("a", "e"))
    ok("ota", "sign", dual, "--key", new_keys["n1"], "--key", new_keys["n2"])
    for trust in (ecu_trust, new_trust):  # an ECU still on version 1, an ECU already on version 2
        out = ok("ota", "verify", dual, "--trust", trust, "--hardware-id", "ecu-a")
        assert "signed by 2 release key(s)" in out


@pytest.mark.parametrize(
    ("old_signers", "new_signers"),
    [(("a",), ("n1",)), (("a", "x"), ("n1",)), ((), ("n1", "n2"))],
    ids=["one of each", "an outsider does not help", "new keys only"],
)
def test_unknown_signatures_never_count_towards_the_threshold(
    tmp_path: Path,
    keys: Keys,
    ecu_trust: Path,
    build_bundle: BuildBundle,
    old_signers: tuple[str, ...],
    new_signers: tuple[str, ...],
) -> None:
    new_trust, new_keys = _dual_signing_setup(tmp_path, keys, ecu_trust)
    bundle = build_bundle(signers=old_signers)
    for name in new_signers:
        ok("ota", "sign", bundle, "--key", new_keys[name])
    refused_on = []
    for trust in (ecu_trust, new_trust):
        result = run_cli("ota", "verify", bundle, "--trust", trust, "--hardware-id", "ecu-a")
        if result.code == 1:
            assert "distinct valid release signature(s), threshold is 2" in result.err
            refused_on.append(trust)
    expected = [ecu_trust] if not old_signers else [ecu_trust, new_trust]
    assert refused_on == expected  # new keys only: fine for version 2, never for version 1


def test_a_bad_signature_by_a_listed_key_is_still_refused(
    tmp_path: Path, keys: Keys, ecu_trust: Path, build_bundle: BuildBundle
) -> None:
    new_trust, new_keys = _dual_signing_setup(tmp_path, keys, ecu_trust)
    dual = build_bundle(signers=("a", "e"))
    ok("ota", "sign", dual, "--key", new_keys["n1"], "--key", new_keys["n2"])
    data = dual.read_bytes()
    marker = f'"keyid":"{load_private_key(keys.private("a")).keyid}","sig":"'.encode()
    at = data.index(marker) + len(marker) + 8
    dual.write_bytes(data[:at] + (b"1" if data[at : at + 1] != b"1" else b"2") + data[at + 1 :])
    for trust in (
        ecu_trust,
        new_trust,
    ):  # a, b, e are still root keys in version 2: their signatures are checked
        result = run_cli("ota", "verify", dual, "--trust", trust, "--hardware-id", "ecu-a")
        assert result.code == 1 and "which the trust root lists, does not verify" in result.err, result.err
