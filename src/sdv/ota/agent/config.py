"""Configuration of the ECU's update agent, in one validated model loaded from YAML (or JSON).

Example (relative paths are relative to the configuration file)::

    state_dir: /var/lib/sdv/ota          # state.json, the partial bundle, time.json, boot.json
    trust: /etc/sdv/trust.json
    hardware_id: ihu-gen3
    slots:
      - {kind: image, name: rootfs, a: /dev/mmcblk0p2, b: /dev/mmcblk0p3}
      - {kind: tree, name: apps, path: /opt/apps, root: /var/lib/sdv/apps}
    boot: {selector: uboot, max_attempts: 3, cmdline: /proc/cmdline}
    health_check: {command: [/usr/libexec/ihu-health], timeout_s: 60}
    reboot_command: [systemctl, reboot]
    ecu_id: VIN123-IHU                   # the ECU's identity in its signed reports
    ecu_key: /var/lib/sdv/ota/ecu-key.pem  # the agent's report key (default; created at the first start)
    event_log: {max_bytes: 1048576}      # events.log is rotated to events.1.log at this size
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sdv.config_files import parse_yaml, read_config_text
from sdv.errors import ConfigError, Problem
from sdv.located import node_lines, validation_problems
from sdv.ota.agent.vehicle_config import VehicleConfig
from sdv.ota.bundle.config import DEFAULT_LIMITS, OtaLimits
from sdv.ota.bundle.manifest import PATTERN_WORDS, HardwareId, Name, Payload, SlotImageTarget
from sdv.ota.errors import AgentConfigError
from sdv.ota.fleet.config import FleetConfig

__all__ = [
    "AgentConfig",
    "BootConfig",
    "EventLogConfig",
    "HealthCheckConfig",
    "ImageSlotConfig",
    "SlotConfig",
    "TransferConfig",
    "TreeSlotConfig",
    "load_agent_config",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)
_KIB = 1024
_MIB = 1024 * _KIB


class HealthCheckConfig(BaseModel):
    """The check that decides whether a slot on trial works.

    Attributes:
        command: the program and its arguments; exit code 0 means healthy. It gets ``SDV_OTA_SLOT`` (the trial
            slot) in its environment.
        timeout_s: a check running longer fails (default 60 s).
    """

    model_config = _STRICT

    command: list[str] = Field(min_length=1)
    timeout_s: float = Field(default=60.0, gt=0)


class ImageSlotConfig(BaseModel):
    """An A/B pair of raw image slots, for payloads whose target is ``slot-image`` with this ``name``.

    Attributes:
        kind: ``"image"``.
        name: the manifest's slot name.
        a: block device or image file of slot A.
        b: block device or image file of slot B.
        health_check: the group's own check of a trial (besides the agent's ``health_check``).
    """

    model_config = _STRICT

    kind: Literal["image"]
    name: Name
    a: Path
    b: Path
    health_check: HealthCheckConfig | None = None


class TreeSlotConfig(BaseModel):
    """An A/B pair of directory trees, for ``file-tree`` payloads installed below ``path``.

    Attributes:
        kind: ``"tree"``.
        name: a name for logs.
        path: the manifest's install path (on the ECU a link to ``ROOT/current``).
        root: directory holding the trees ``A`` and ``B`` and the link ``current``.
        health_check: the group's own check of a trial (besides the agent's ``health_check``).
    """

    model_config = _STRICT

    kind: Literal["tree"]
    name: Name
    path: str = Field(min_length=1, max_length=1024, pattern=r"^/[A-Za-z0-9._+/-]*$")
    root: Path
    health_check: HealthCheckConfig | None = None


SlotConfig = Annotated[ImageSlotConfig | TreeSlotConfig, Field(discriminator="kind")]
"""One slot group: its own A/B pair, trial, boot attempts, health check, installed bundle and release counter."""


class BootConfig(BaseModel):
    """Boot selection of the slot group the bootloader starts (the others switch on their own, see ``group``).

    Attributes:
        group: the slot group whose sides the bootloader selects (default: the first image group, or the first
            group when there is none). Every other group keeps its own selection in ``boot.NAME.json`` in the
            state directory and switches without a reboot.
        selector: ``"file"`` (a JSON file ``boot.json`` in the state directory; application-level A/B and
            tests) or ``"uboot"`` (the U-Boot environment, RAUC's variables).
        max_attempts: boots a trial slot gets before the bootloader falls back (default 3).
        fw_printenv: the ``fw_printenv`` command.
        fw_setenv: the ``fw_setenv`` command.
        cmdline: kernel command line file naming the booted slot (``rauc.slot=A``); without it the agent
            simulates the bootloader at each start.
    """

    model_config = _STRICT

    group: Name | None = None
    selector: Literal["file", "uboot"] = "file"
    max_attempts: int = Field(default=3, ge=1, le=100)
    fw_printenv: str = "fw_printenv"
    fw_setenv: str = "fw_setenv"
    cmdline: Path | None = None


class TransferConfig(BaseModel):
    """Limits of bundle transfers.

    Attributes:
        max_chunk_bytes: largest upload chunk accepted (default 4 MiB).
        min_free_bytes: free space that must remain in the state directory after a transfer (default 16 MiB).
        idle_timeout_s: an upload that sends no chunk for this long is ended, releasing the upload for another
            push (Uptane's slow retrieval attack; default 60 s). The transfer stays resumable.
        sync_interval_bytes: received bytes are ``fsync``-ed, and the offset covering them persisted, once this
            many were written since the last ``fsync`` (default 4 MiB; 0: after every chunk). A power loss
            costs at most this much (or ``sync_interval_s``' worth) of the upload, which resumes from the last
            persisted offset.
        sync_interval_s: ... or once this long passed since the last ``fsync``, at the next chunk (default
            1 s). The end of the bundle and the end of every upload stream are always ``fsync``-ed.
        stream_to_slots: uncompressed slot images are written straight into the inactive slot as they arrive
            instead of into the received bundle file, so the bundle is never on disk twice (default true;
            :mod:`sdv.ota.agent.placement`). File trees and compressed payloads are kept in the file until the
            install step unpacks or decompresses them.
    """

    model_config = _STRICT

    max_chunk_bytes: int = Field(default=4 * _MIB, ge=4 * _KIB, le=64 * _MIB)
    min_free_bytes: int = Field(default=16 * _MIB, ge=0)
    idle_timeout_s: float = Field(default=60.0, gt=0)
    sync_interval_bytes: int = Field(default=4 * _MIB, ge=0)
    sync_interval_s: float = Field(default=1.0, ge=0)
    stream_to_slots: bool = True


class EventLogConfig(BaseModel):
    """Bounds of the event log.

    Attributes:
        max_bytes: size of ``events.log`` at which it is rotated to ``events.1.log`` (default 1 MiB: several
            thousand entries; at most about twice this is kept).
    """

    model_config = _STRICT

    max_bytes: int = Field(default=_MIB, ge=4 * _KIB, le=1024 * _MIB)


class AgentConfig(BaseModel):
    """Everything the update agent needs to know about its ECU.

    Attributes:
        state_dir: the agent's directory (state, partial bundle, trusted time, file boot selection).
        trust: the ECU's trust file.
        hardware_id: the ECU's hardware id.
        slots: the slot groups; every payload of a bundle must name one.
        boot: boot selection.
        health_check: run when an update starts its trial (and at each start on trial), besides each trial
            group's own check; none: healthy unless a group's check fails.
        reboot_command: run to reboot when the boot selector's group changes sides; none: the agent switches
            in-process (application level A/B, and the simulation on a development machine).
        allow_reinstall: a bundle marked ``reinstall`` may install at a group's committed release counter
            (a repair; default true). A lower counter is always refused.
        transfer: transfer limits.
        limits: bundle verification limits.
        ecu_id: the ECU's identity (serial number) in its signed reports (default: the hardware id).
        ecu_key: the agent's signing key for its reports (default ``STATE_DIR/ecu-key.pem``; created at the
            first start when missing).
        event_log: bounds of the event log.
        fleet: where the agent pulls updates from (hawkBit or a signed index; see docs/ota.md).
        vehicle: live signals, preconditions, energy, consent, software identification
            (:mod:`sdv.ota.agent.vehicle_config`).
    """

    model_config = _STRICT

    state_dir: Path
    trust: Path
    hardware_id: HardwareId
    slots: list[SlotConfig] = Field(min_length=1)
    boot: BootConfig = BootConfig()
    health_check: HealthCheckConfig | None = None
    reboot_command: list[str] | None = None
    allow_reinstall: bool = True
    transfer: TransferConfig = TransferConfig()
    limits: OtaLimits = DEFAULT_LIMITS
    ecu_id: Name | None = None
    ecu_key: Path | None = None
    event_log: EventLogConfig = EventLogConfig()
    fleet: FleetConfig | None = None  # pulling updates: sdv.ota.fleet
    vehicle: VehicleConfig = VehicleConfig()

    @model_validator(mode="after")
    def _unique(self) -> AgentConfig:
        names = [slot.name for slot in self.slots]
        if len(set(names)) != len(names):
            raise ValueError("two slot groups share a name")
        if self.boot.group is not None and self.boot.group not in names:
            raise ValueError(f"boot.group {self.boot.group} names no slot group ({', '.join(names)})")
        return self

    @property
    def boot_group(self) -> str:
        """The slot group the bootloader selects."""
        if self.boot.group is not None:
            return self.boot.group
        images = [slot.name for slot in self.slots if isinstance(slot, ImageSlotConfig)]
        return (images or [self.slots[0].name])[0]

    def slot(self, name: str) -> SlotConfig:
        """The slot group named ``name``."""
        return next(slot for slot in self.slots if slot.name == name)

    def ordered_slots(self) -> list[SlotConfig]:
        """The slot groups, the boot selector's group first."""
        first = self.boot_group
        return sorted(self.slots, key=lambda slot: slot.name != first)

    def slot_for(self, payload: Payload) -> SlotConfig | None:
        """The slot group a payload is installed into, or ``None``."""
        target = payload.target
        for slot in self.slots:
            if isinstance(target, SlotImageTarget):
                if isinstance(slot, ImageSlotConfig) and slot.name == target.slot:
                    return slot
            elif isinstance(slot, TreeSlotConfig) and slot.path == target.path:
                return slot
        return None


def _resolve(value: object, base: Path) -> object:
    if isinstance(value, dict):
        return {key: _resolve_path(key, item, base) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, base) for item in value]
    return value


_PATH_KEYS = frozenset(
    {
        "state_dir",
        "trust",
        "a",
        "b",
        "root",
        "cmdline",
        "ecu_key",
        "token_file",
        "ca_file",
        "client_cert",
        "client_key",
        "ca",
    }
)
# Commands whose program is a path when it contains a slash (``./health.sh``, ``bin/check``), as a shell finds it.
_COMMAND_KEYS = frozenset({"command", "reboot_command"})
_PROGRAM_KEYS = frozenset({"fw_printenv", "fw_setenv"})


def _resolve_path(key: str, value: object, base: Path) -> object:
    if key in _PATH_KEYS and isinstance(value, str):
        return str(base / value)  # an absolute value stays as it is
    if key in _PROGRAM_KEYS and isinstance(value, str):
        return _program(value, base)
    if key in _COMMAND_KEYS and isinstance(value, list) and value and isinstance(value[0], str):
        return [_program(value[0], base), *value[1:]]
    return _resolve(value, base)


def _program(program: str, base: Path) -> str:
    """A program named with a slash, relative to the configuration's folder; a bare name is looked up on PATH."""
    return str(base / program) if "/" in program else program


_SLOT_KINDS = frozenset({"image", "tree"})  # the tags pydantic puts into the locations of slot errors


def load_agent_config(path: Path) -> AgentConfig:
    """Load an agent configuration file (YAML or JSON); relative paths are relative to the file, and so is a
    command's program named with a slash (``health_check.command: [./health.sh]``).

    Raises:
        AgentConfigError: the file cannot be read or does not validate: every problem with the file, the line,
            the key path and what was expected.
    """
    file = str(path)
    try:
        text = read_config_text(path)  # bounded: size, UTF-8
        data, node = parse_yaml(text, file)  # bounded: nesting, integers, duplicate keys
    except ConfigError as error:
        raise AgentConfigError(list(error.problems)) from error
    if not isinstance(data, dict):
        raise AgentConfigError([Problem(file, "(top level)", "expected a mapping of settings")])
    try:
        return AgentConfig.model_validate(_resolve(data, path.resolve().parent))
    except ValidationError as error:
        problems = validation_problems(
            error, file, node_lines(node), patterns=PATTERN_WORDS, tags=_SLOT_KINDS
        )
        raise AgentConfigError(problems) from None
