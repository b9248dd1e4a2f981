"""Shared fixtures of the OTA tests: keys, a trust root and payloads made with the ``sdv ota`` CLI."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from sdv.cli.main import main


@dataclass(frozen=True)
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str | os.PathLike[str]) -> CliResult:
    """Run ``sdv ARGS`` in-process and capture its exit code and output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([os.fspath(arg) for arg in args])
        except SystemExit as exit_:  # argparse errors
            code = int(exit_.code or 0)
    return CliResult(code, out.getvalue(), err.getvalue())


def ok(*args: str | os.PathLike[str]) -> str:
    """Run a command that must succeed and return its standard output."""
    result = run_cli(*args)
    assert result.code == 0, f"sdv {' '.join(map(str, args))} failed: {result.err}"
    return result.out


@dataclass(frozen=True)
class Keys:
    """Key files: release keys a, b (Ed25519) and e (ECDSA P-256), an outsider x, an ECU key."""

    directory: Path

    def private(self, name: str) -> Path:
        return self.directory / f"{name}.pem"

    def public(self, name: str) -> Path:
        return self.directory / f"{name}.pub.pem"

    @property
    def trust(self) -> Path:
        """Trust root version 1: release and root roles are a, b, e with threshold 2."""
        return self.directory / "trust.json"


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    directory = tmp_path_factory.mktemp("keys")
    result = Keys(directory)
    for name, kind in (
        ("a", "ed25519"),
        ("b", "ed25519"),
        ("e", "ecdsa-p256"),
        ("x", "ed25519"),
        ("ecu", "ed25519"),
    ):
        ok(
            "ota",
            "keygen",
            "--private",
            result.private(name),
            "--public",
            result.public(name),
            "--type",
            kind,
        )
    ok(
        "ota", "trust", "init",
        "--key", result.public("a"), "--key", result.public("b"), "--key", result.public("e"),
        "--threshold", "2", "-o", result.trust,
    )  # fmt: skip
    return result


def make_tar(path: Path, members: Sequence[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """Write an uncompressed tar archive with exactly these members (data for regular files)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            if info.isreg():
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                archive.addfile(info)
    return path


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = mode
    return info


@pytest.fixture(scope="session")
def payloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("payloads")
    image = directory / "rootfs.img"
    image.write_bytes(os.urandom(48 * 1024 + 17))
    tree = make_tar(
        directory / "app.tar",
        [
            (entry("bin", tarfile.DIRTYPE, mode=0o755), b""),
            (entry("bin/app", mode=0o755), b"#!/bin/sh\necho app\n"),
            (entry("etc", tarfile.DIRTYPE, mode=0o755), b""),
            (entry("etc/app.conf"), b"speed_limit=130\n"),
            (entry("bin/run", tarfile.SYMTYPE, link="app"), b""),
            (entry("etc/current.conf", tarfile.SYMTYPE, link="../etc/app.conf"), b""),
            (entry("bin/app.hard", tarfile.LNKTYPE, link="bin/app"), b""),
        ],
    )
    return {"image": image, "tree": tree}


BuildBundle = Callable[..., Path]


@pytest.fixture
def build_bundle(tmp_path: Path, keys: Keys, payloads: dict[str, Path]) -> BuildBundle:
    """Build and sign a real bundle with the CLI (default: counter 5, hardware ecu-a, signed by a and e)."""

    def build(
        *,
        name: str = "demo",
        counter: int = 5,
        hardware_ids: Sequence[str] = ("ecu-a",),
        files: Sequence[Path] | None = None,
        expires: str = "30d",
        signers: Sequence[str] = ("a", "e"),
        output: str = "bundle.sdvota",
    ) -> Path:
        bundle = tmp_path / output
        arguments: list[str | os.PathLike[str]] = [
            "ota", "build", "--name", name, "--version", f"1.{counter}.0", "--release-counter", str(counter),
            "--expires", expires, "-o", bundle,
        ]  # fmt: skip
        for hardware_id in hardware_ids:
            arguments += ["--hardware-id", hardware_id]
        for path in files if files is not None else (payloads["image"], payloads["tree"]):
            arguments += ["--payload", path]
        ok(*arguments)
        for signer in signers:
            ok("ota", "sign", bundle, "--key", keys.private(signer))
        return bundle

    return build
