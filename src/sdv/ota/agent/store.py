"""The update agent's files and processes around its rules: the persisted record, the state directory's lock, the
status snapshot, the health check, and the fault-injection hook.

State directory layout::

    state.json        the AgentRecord, replaced atomically at every change (temp file, fsync, rename, fsync dir)
    incoming.sdvota   the bundle being received (see sdv.ota.agent.transfer)
    time.json         the trusted time floor
    boot.json         the boot selection of the boot selector's group (file boot selector only)
    boot.NAME.json    the selection of every other slot group NAME (it switches without a reboot)
    lock              held (flock) by the one agent process using the directory; holds its pid

The agent tells an :class:`AgentObserver` of each persisted state and each staged chunk; the fault-injection tests
give it one that cuts the power at an exact point.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError

from sdv.ota.agent.boot import BootEnv, BootSelector, FileBootSelector, UBootBootSelector
from sdv.ota.agent.config import AgentConfig, HealthCheckConfig, ImageSlotConfig, SlotConfig
from sdv.ota.agent.preconditions import VehicleView
from sdv.ota.agent.slots import ImageSlotGroup, SlotGroup, TreeSlotGroup
from sdv.ota.agent.state import AgentRecord, AgentState, GroupRecord, SlotName, other_slot
from sdv.ota.bundle.store import read_limited, write_atomically
from sdv.ota.errors import OtaError, StateDirectoryBusyError

__all__ = [
    "AgentObserver",
    "AgentStatus",
    "GroupBoot",
    "boot_view",
    "has_record",
    "local_status",
    "lock_state_directory",
    "make_group",
    "make_selector",
    "make_selectors",
    "read_record",
    "run_health_check",
    "seed_selector",
    "write_record",
]

_logger = logging.getLogger(__name__)
_RECORD_FILE = "state.json"
_RECORD_LIMIT = 256 * 1024


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
class GroupBoot:
    """What is known of a slot group's boot selection at run time.

    Attributes:
        name: the group.
        booted_slot: the side running now.
        attempts_left: boot attempts left for the group's trial side (or the running one when not on trial).
    """

    name: str
    booted_slot: SlotName
    attempts_left: int


@dataclass(frozen=True)
class AgentStatus:
    """What the agent reports: the persisted record plus what is only known at run time.

    Attributes:
        record: the persisted record.
        booted_slot: the side of the boot selector's group running now.
        attempts_left: boot attempts left for that group's trial side (or the running one when none is on trial).
        staged_bytes: payload bytes written to the slot so far while processing.
        staging_total: payload bytes of the bundle being processed.
        groups: every slot group's boot selection, the boot selector's group first.
        vehicle: the last precondition check, the notice and the consent state (a running agent only).
    """

    record: AgentRecord
    booted_slot: SlotName
    attempts_left: int
    staged_bytes: int = 0
    staging_total: int = 0
    groups: tuple[GroupBoot, ...] = ()
    vehicle: VehicleView | None = None


def boot_view(record: AgentRecord, selectors: dict[str, BootSelector]) -> tuple[GroupBoot, ...]:
    """Each group's running side and the boot attempts left of its side on trial (or of the running one)."""
    on_trial = record.state in (AgentState.ACTIVATING, AgentState.VERIFYING, AgentState.ROLLING_BACK)
    views = []
    for name, selector in selectors.items():
        booted = selector.booted()
        group = record.groups.get(name)
        trial = group.trial_slot if group is not None and on_trial else None
        views.append(GroupBoot(name, booted, selector.attempts_left(trial or booted)))
    return tuple(views)


def make_selector(config: AgentConfig) -> BootSelector:
    """The boot selector of the group the bootloader starts, as the configuration names it."""
    boot = config.boot
    if boot.selector == "uboot":
        return UBootBootSelector(boot.fw_printenv, boot.fw_setenv, boot.max_attempts, boot.cmdline)
    return FileBootSelector(config.state_dir / "boot.json", boot.max_attempts)


def make_selectors(config: AgentConfig, boot_selector: BootSelector | None = None) -> dict[str, BootSelector]:
    """A boot selector per slot group, the boot selector's group first: the configured one (or
    ``boot_selector``) for that group, a file of its own in the state directory for each other group."""
    selectors: dict[str, BootSelector] = {}
    for slot in config.ordered_slots():
        if slot.name == config.boot_group:
            selectors[slot.name] = boot_selector or make_selector(config)
        else:
            path = config.state_dir / f"boot.{slot.name}.json"
            selectors[slot.name] = FileBootSelector(path, config.boot.max_attempts)
    return selectors


def seed_selector(selector: BootSelector, group: GroupRecord) -> None:
    """Give a group's own selection file its first content from the group's record (an ECU whose record
    predates per-group selection, or a group new to the configuration): the committed side runs."""
    if isinstance(selector, FileBootSelector) and not selector.path.exists():
        active = group.active_slot
        attempts = selector.max_attempts
        selector.store(
            BootEnv(
                order=(active, other_slot(active)),
                attempts_left={active: attempts, other_slot(active): 0},
                booted=active,
            )
        )


def make_group(config: SlotConfig) -> SlotGroup:
    """The slot group a slot configuration describes."""
    if isinstance(config, ImageSlotConfig):
        return ImageSlotGroup(config.name, config.a, config.b)
    return TreeSlotGroup(config.name, config.path, config.root)


def local_status(config: AgentConfig) -> AgentStatus:
    """The status of the agent whose state directory this is, read without taking its lock."""
    record = read_record(config.state_dir).with_groups([slot.name for slot in config.ordered_slots()])
    groups = boot_view(record, make_selectors(config))
    return AgentStatus(record, groups[0].booted_slot, groups[0].attempts_left, groups=groups)


def run_health_check(
    check: HealthCheckConfig | None, slot: SlotName, trial: dict[str, SlotName], group: str = ""
) -> str | None:
    """Run a health check of an update on trial; returns why it failed, or ``None`` when healthy.

    The program gets ``SDV_OTA_SLOT`` (the side on trial), ``SDV_OTA_GROUP`` (the group whose own check this
    is; empty for the agent's check) and ``SDV_OTA_GROUPS`` (every group on trial as ``NAME=SIDE``, space
    separated) in its environment.
    """
    if check is None:
        return None
    environment = {
        **os.environ,
        "SDV_OTA_SLOT": slot,
        "SDV_OTA_GROUP": group,
        "SDV_OTA_GROUPS": " ".join(f"{name}={side}" for name, side in trial.items()),
    }
    program = check.command[0]
    label = f"slot group {group}: " if group else ""
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
        return f"{label}health check {program} did not finish within {check.timeout_s} s"
    except OSError as error:
        return f"{label}health check {program} cannot run: {error}"
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
        return f"{label}health check {program} exited with {result.returncode}: {detail[0][:500]}"
    return None


class AgentObserver:
    """Told of the agent's steps as they happen; this base is silent. Fault-injection tests pass one that cuts the
    power (SIGKILL) at an exact step (``tests/ota/crash_launcher.py``); nothing in the project reads a switch
    for it."""

    def persisted(self, state: AgentState) -> None:
        """Called right after ``state`` was persisted."""

    def staged(self, count: int) -> None:
        """Called after ``count`` payload bytes were written to slots."""
