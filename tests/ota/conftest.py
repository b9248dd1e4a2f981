"""Shared fixtures of the OTA tests: keys, a trust root and payloads made with the ``sdv ota`` CLI."""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import tarfile
from collections.abc import Callable, Iterator, Sequence
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


# -- the update agent ------------------------------------------------------------------------------------------


@dataclass
class Ecu:
    """A simulated ECU in a directory: image slots, a tree slot group, the agent's state and configuration.

    Slot A holds the factory software (an image and an application tree); slot B is empty.
    """

    root: Path
    trust: Path

    @property
    def config(self) -> Path:
        return self.root / "agent.yaml"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def tree_root(self) -> Path:
        return self.root / "apps"

    def image(self, slot: str) -> Path:
        return self.root / f"rootfs.{slot.lower()}.img"

    def write_config(self, **extra: object) -> Path:
        import yaml

        document: dict[str, object] = {
            "state_dir": "state",
            "trust": str(self.trust),
            "hardware_id": "ecu-a",
            "slots": [
                {"kind": "image", "name": "rootfs", "a": self.image("A").name, "b": self.image("B").name},
                {"kind": "tree", "name": "app", "path": "/opt/app", "root": "apps"},
            ],
            "transfer": {"min_free_bytes": 0, "max_chunk_bytes": 65536},
            **extra,
        }
        self.config.write_text(yaml.safe_dump(document))
        return self.config

    def software(self, slot: str) -> tuple[str, str]:
        """(image digest, tree digest) of a slot."""
        from sdv.ota.agent.slots import ImageSlotGroup, TreeSlotGroup

        image = ImageSlotGroup("rootfs", self.image("A"), self.image("B")).digest(slot)  # type: ignore[arg-type]
        tree = TreeSlotGroup("app", "/opt/app", self.tree_root).digest(slot)  # type: ignore[arg-type]
        return image, tree

    def running(self) -> tuple[str, str]:
        """The software of the slot the boot selector last booted, as the tree link shows it too."""
        from sdv.ota.agent.boot import FileBootSelector

        booted = FileBootSelector(self.state_dir / "boot.json").booted()
        link = os.readlink(self.tree_root / "current") if (self.tree_root / "current").is_symlink() else "A"
        assert link == booted, f"tree link names {link}, the bootloader started {booted}"
        return self.software(booted)


def _software_of(payloads: dict[str, Path], directory: Path) -> tuple[str, str]:
    """(image digest, tree digest) the bundle built from ``payloads`` installs."""
    from sdv.ota.agent.slots import tree_digest
    from sdv.ota.bundle.store import hash_file

    unpacked = directory / "unpacked"
    unpacked.mkdir(exist_ok=True)
    with tarfile.open(payloads["tree"]) as archive:
        # the trusted test archive; the "data" filter where this Python has it (3.11.4 and later)
        archive.extractall(unpacked, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return hash_file(payloads["image"])[1], tree_digest(unpacked)


@pytest.fixture
def ecu(tmp_path: Path, keys: Keys) -> Ecu:
    root = tmp_path / "ecu"
    root.mkdir()
    device = Ecu(root, trust=keys.trust)
    device.image("A").write_bytes(b"factory image " * 1000)
    factory = root / "apps" / "A" / "bin"
    factory.mkdir(parents=True)
    (factory / "app").write_text("#!/bin/sh\necho factory\n")
    (root / "apps" / "current").symlink_to("A")
    device.write_config()
    return device


@pytest.fixture(scope="session")
def new_software(payloads: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """(image digest, tree digest) of the software in the default test bundle."""
    return _software_of(payloads, tmp_path_factory.mktemp("new-software"))


class AgentProcess:
    """``sdv ota agent --port 0`` as a real process (its start stands for a boot of the ECU)."""

    def __init__(self, config: Path, crash: str | None = None, extra: Sequence[str] = ()) -> None:
        import subprocess
        import sys

        launcher = ["-m", "sdv.cli.main"]
        if crash is not None:  # the agent cuts its own power at that step (crash_launcher.py)
            launcher = [str(Path(__file__).with_name("crash_launcher.py")), crash]
        self.log = config.parent / "agent.log"
        self._log_handle = self.log.open("a")
        self.process = subprocess.Popen(
            [sys.executable, *launcher, "ota", "agent", "--config", str(config), "--port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=self._log_handle,
            text=True,
        )
        self.target = self._read_target()

    def _read_target(self) -> str | None:
        import select

        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 30)
        assert ready, f"the agent did not start: {self.log.read_text()}"
        line = self.process.stdout.readline()
        if not line:  # it died while booting (a crash hook at a recovery step)
            self.process.wait(10)
            return None
        return line.rsplit(" ", 1)[-1].strip()

    def kill(self) -> None:
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._close()

    def stop(self) -> int:
        """SIGTERM: a clean stop; returns the exit code."""
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(10)
        self._close()
        return code

    def _close(self) -> None:
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log_handle.close()


@pytest.fixture
def start_agent() -> Iterator[Callable[..., AgentProcess]]:
    """Start agents; every one still running at the end is stopped with SIGTERM and must exit 0."""
    started: list[AgentProcess] = []

    def start(config: Path, crash: str | None = None, extra: Sequence[str] = ()) -> AgentProcess:
        agent = AgentProcess(config, crash, extra)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        if agent.process.poll() is None:
            assert agent.stop() == 0, agent.log.read_text()


_FW_PRINTENV = """#!{python}
import pathlib, sys
store = pathlib.Path({store!r})
if store.exists():
    sys.stdout.write(store.read_text())
"""
_FW_SETENV = """#!{python}
import pathlib, sys
store = pathlib.Path({store!r})
variables = dict(line.split("=", 1) for line in store.read_text().splitlines()) if store.exists() else {{}}
if sys.argv[1] == "-s":
    for line in pathlib.Path(sys.argv[2]).read_text().splitlines():
        name, _, value = line.partition(" ")
        variables[name] = value
else:
    variables[sys.argv[1]] = " ".join(sys.argv[2:])
store.write_text("".join(f"{{name}}={{value}}\\n" for name, value in variables.items()))
"""


def fake_fw_tools(directory: Path) -> tuple[str, str, Path]:
    """Small fw_printenv and fw_setenv programs that keep the U-Boot variables in a file (NAME=VALUE lines)."""
    store = directory / "uboot.env"
    tools = []
    for name, text in (("fw_printenv", _FW_PRINTENV), ("fw_setenv", _FW_SETENV)):
        path = directory / name
        path.write_text(text.format(python=sys.executable, store=str(store)))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        tools.append(str(path))
    return tools[0], tools[1], store
