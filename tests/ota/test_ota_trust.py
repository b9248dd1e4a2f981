"""Trust root rotation (TUF 5.3.4-5.3.5), through the CLI and the library."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import Keys, ok, run_cli
from sdv.ota import BadSignatureError, RollbackError, RotationError, ThresholdNotMetError
from sdv.ota.store import load_trust
from sdv.ota.trust import verify_rotation


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
