"""The update agent's files and processes around its rules: the persisted record, the state directory's lock, the
status snapshot, the health check, and the fault-injection hook.

State directory layout::

    state.json        the AgentRecord, replaced atomically at every change (temp file, fsync, rename, fsync dir)
    incoming.sdvota   the bundle being received (see sdv.ota.transfer)
    time.json         the trusted time floor
    boot.json         the boot selection (file boot selector only)
    lock              held (flock) by the one agent process using the directory; holds its pid

Test hook: ``SDV_OTA_TEST_CRASH=after:STATE`` kills the process with SIGKILL right after it persisted ``STATE``,
``SDV_OTA_TEST_CRASH=staged:N`` once ``N`` payload bytes were written to slots. The fault-injection tests use it
to cut power at exact points; it has no other use.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from sdv.ota.agent_config import AgentConfig, HealthCheckConfig, ImageSlotConfig, SlotConfig
from sdv.ota.agent_state import AgentRecord, AgentState, SlotName
from sdv.ota.boot import BootSelector, FileBootSelector, UBootBootSelector
from sdv.ota.errors import OtaError, StateDirectoryBusyError
from sdv.ota.slots import ImageSlotGroup, SlotGroup, TreeSlotGroup
from sdv.ota.store import read_limited, write_atomically

__all__ = [
    "AgentStatus",
    "CrashHook",
    "boot_view",
    "has_record",
    "local_status",
    "lock_state_directory",
    "make_group",
    "make_selector",
    "read_record",
    "run_health_check",
    "write_record",
]

_logger = logging.getLogger(__name__)
_RECORD_FILE = "state.json"
_RECORD_LIMIT = 256 * 1024
_CRASH_ENV = "SDV_OTA_TEST_CRASH"


def has_record(state_dir: Path) -> bool:
    """Whether an agent ever persisted its record in this state directory."""
    return (state_dir / _RECORD_FILE).exists()


def read_record(state_dir: Path) -> AgentRecord:
    """The persisted record of a state directory (the initial record if there is none), without locking."""
    path = state_dir / _RECORD_FILE
    if not path.exists():
        return AgentRecord()
    try:
        return AgentRecord.model_validate_json(read_limited(path, _RECORD_LIMIT, "agent state"))
    except ValidationError as error:
        raise OtaError(f"{path}: malformed agent state: {error}") from error


def write_record(state_dir: Path, record: AgentRecord) -> None:
    """Persist the record atomically."""
    write_atomically(state_dir / _RECORD_FILE, record.model_dump_json(indent=1).encode())


def lock_state_directory(state_dir: Path) -> BinaryIO:
    """Take the state directory's lock for this process (released when the returned file is closed or the
    process ends, however it ends).

    Raises:
        StateDirectoryBusyError: another process holds it (the message names its pid).
    """
    handle = (state_dir / "lock").open("a+b")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().decode(errors="replace").strip() or "another process"
        handle.close()
        raise StateDirectoryBusyError(
            f"{state_dir} is in use by the update agent with pid {holder}; talk to it with --target"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()).encode())
    handle.flush()
    return handle


@dataclass(frozen=True)
class AgentStatus:
    """What the agent reports: the persisted record plus what is only known at run time.

    Attributes:
        record: the persisted record.
        booted_slot: the slot running now.
        attempts_left: boot attempts left for the trial slot (or the booted one when none is on trial).
        staged_bytes: payload bytes written to the slot so far while processing.
        staging_total: payload bytes of the bundle being processed.
    """

    record: AgentRecord
    booted_slot: SlotName
    attempts_left: int
    staged_bytes: int = 0
    staging_total: int = 0


def boot_view(record: AgentRecord, selector: BootSelector) -> tuple[SlotName, int]:
    """The running slot and the boot attempts left of the slot on trial (or of the running one)."""
    booted = selector.booted()
    on_trial = record.state in (AgentState.ACTIVATING, AgentState.VERIFYING)
    slot = record.trial_slot if on_trial else booted
    return booted, selector.attempts_left(slot or booted)


def make_selector(config: AgentConfig) -> BootSelector:
    """The boot selector the configuration names."""
    boot = config.boot
    if boot.selector == "uboot":
        return UBootBootSelector(boot.fw_printenv, boot.fw_setenv, boot.max_attempts, boot.cmdline)
    return FileBootSelector(config.state_dir / "boot.json", boot.max_attempts)


def make_group(config: SlotConfig) -> SlotGroup:
    """The slot group a slot configuration describes."""
    if isinstance(config, ImageSlotConfig):
        return ImageSlotGroup(config.name, config.a, config.b)
    return TreeSlotGroup(config.name, config.path, config.root)


def local_status(config: AgentConfig) -> AgentStatus:
    """The status of the agent whose state directory this is, read without taking its lock."""
    record = read_record(config.state_dir)
    return AgentStatus(record, *boot_view(record, make_selector(config)))


def run_health_check(check: HealthCheckConfig | None, slot: SlotName) -> str | None:
    """Run the health check for ``slot`` on trial; returns why it failed, or ``None`` when healthy."""
    if check is None:
        return None
    environment = {**os.environ, "SDV_OTA_SLOT": slot}
    program = check.command[0]
    try:
        result = subprocess.run(
            check.command,
            capture_output=True,
            text=True,
            timeout=check.timeout_s,
            env=environment,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"health check {program} did not finish within {check.timeout_s} s"
    except OSError as error:
        return f"health check {program} cannot run: {error}"
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
        return f"health check {program} exited with {result.returncode}: {detail[0]}"
    return None


class CrashHook:
    """The documented fault-injection hook (module docstring); inert unless the variable is set."""

    def __init__(self, spec: str) -> None:
        kind, _, value = spec.partition(":")
        self.after_state = value if kind == "after" else None
        self.staged_bytes = int(value) if kind == "staged" and value.isdigit() else None

    @classmethod
    def from_environment(cls) -> CrashHook:
        """The hook ``SDV_OTA_TEST_CRASH`` asks for (inert when it is not set)."""
        return cls(os.environ.get(_CRASH_ENV, ""))

    def _die(self, why: str) -> None:
        _logger.warning("%s=%s: killing this process (%s)", _CRASH_ENV, os.environ.get(_CRASH_ENV), why)
        os.kill(os.getpid(), signal.SIGKILL)

    def persisted(self, state: AgentState) -> None:
        """Called right after ``state`` was persisted."""
        if self.after_state == state.value:
            self._die(f"persisted {state}")

    def staged(self, count: int) -> None:
        """Called after ``count`` payload bytes were written to slots."""
        if self.staged_bytes is not None and count >= self.staged_bytes:
            self._die(f"{count} bytes staged")
