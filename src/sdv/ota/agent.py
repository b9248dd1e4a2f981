"""The ECU's update agent: receives a bundle, verifies and stages it in the inactive slot, activates it on
trial, commits or rolls back. The rules live in :mod:`sdv.ota.agent_state`; this orchestrator does the I/O.

State directory layout::

    state.json        the AgentRecord, replaced atomically at every change (temp file, fsync, rename, fsync dir)
    incoming.sdvota   the bundle being received (appended, fsync-ed before its offset is persisted)
    time.json         the trusted time floor
    boot.json         the boot selection (file boot selector only)
    lock              held (flock) by the one agent process using the directory

Invariants:

* the persisted transfer offset is advanced only after the bytes up to it were written and fsync-ed, so it never
  exceeds what the partial file holds; on start the file is truncated to the persisted offset and the transfer
  resumes there;
* payloads are written only into the slot that is not the active one; the active slot is never opened;
* a state is persisted *before* the step it names starts, and every step is idempotent, so a restart at any
  instant repeats the interrupted step or takes the documented way back (see :meth:`UpdateAgent._recover`);
* the installed bundle and its release counter (the anti-rollback floor) change only at commit (mark-good);
* a bundle that fails verification leaves the record in ``Failed`` with the reason, no partial bundle file and no
  tree in the slots (verification of the header happens before the first payload byte is written).

Test hook: ``SDV_OTA_TEST_CRASH=after:STATE`` kills the process with SIGKILL right after it persisted ``STATE``,
``SDV_OTA_TEST_CRASH=staged:N`` once ``N`` payload bytes were written to slots. The fault-injection tests use it
to cut power at each transition; it has no other use.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from pydantic import ValidationError

from sdv.ota.agent_config import AgentConfig, ImageSlotConfig, SlotConfig
from sdv.ota.agent_state import (
    AT_REST,
    AgentRecord,
    AgentState,
    BundleRecord,
    SlotName,
    TransferRecord,
    other_slot,
    transition,
    updated,
)
from sdv.ota.boot import BootSelector, FileBootSelector, UBootBootSelector
from sdv.ota.bundle import read_header
from sdv.ota.errors import (
    AgentStateError,
    InsufficientSpaceError,
    OperationCancelledError,
    OtaError,
    SizeLimitError,
    StateDirectoryBusyError,
    TransferInProgressError,
    TransferOffsetError,
    UnknownSlotError,
)
from sdv.ota.manifest import Manifest, Payload
from sdv.ota.slots import ImageSlotGroup, SlotGroup, SlotWriter, TreeSlotGroup
from sdv.ota.store import (
    hash_file,
    load_time_state,
    load_trust,
    read_limited,
    save_time_state,
    write_atomically,
)
from sdv.ota.trusted_time import TimeState, trusted_now
from sdv.ota.verifier import BundleVerifier

__all__ = ["AgentStatus", "UpdateAgent", "local_status", "make_selector", "read_record"]

_logger = logging.getLogger(__name__)
_S = AgentState
_RECORD_LIMIT = 256 * 1024
_CRASH_ENV = "SDV_OTA_TEST_CRASH"


def read_record(state_dir: Path) -> AgentRecord:
    """The persisted record of a state directory (the initial record if there is none), without locking."""
    path = state_dir / "state.json"
    if not path.exists():
        return AgentRecord()
    try:
        return AgentRecord.model_validate_json(read_limited(path, _RECORD_LIMIT, "agent state"))
    except ValidationError as error:
        raise OtaError(f"{path}: malformed agent state: {error}") from error


def local_status(config: AgentConfig) -> AgentStatus:
    """The status of the agent whose state directory this is, read without taking its lock."""
    record = read_record(config.state_dir)
    return AgentStatus(record, *_boot_view(record, make_selector(config)))


def _boot_view(record: AgentRecord, selector: BootSelector) -> tuple[SlotName, int]:
    """The running slot and the boot attempts left of the slot on trial (or of the running one)."""
    booted = selector.booted()
    slot = record.trial_slot if record.state in (_S.ACTIVATING, _S.VERIFYING) else booted
    return booted, selector.attempts_left(slot or booted)


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


class _CrashHook:
    """The documented fault-injection hook (module docstring); inert unless the variable is set."""

    def __init__(self, spec: str) -> None:
        kind, _, value = spec.partition(":")
        self.after_state = value if kind == "after" else None
        self.staged_bytes = int(value) if kind == "staged" and value.isdigit() else None

    def _die(self, why: str) -> None:
        _logger.warning("%s=%s: killing this process (%s)", _CRASH_ENV, os.environ.get(_CRASH_ENV), why)
        os.kill(os.getpid(), signal.SIGKILL)

    def persisted(self, state: AgentState) -> None:
        if self.after_state == state.value:
            self._die(f"persisted {state}")

    def staged(self, count: int) -> None:
        if self.staged_bytes is not None and count >= self.staged_bytes:
            self._die(f"{count} bytes staged")


def _make_group(config: SlotConfig) -> SlotGroup:
    if isinstance(config, ImageSlotConfig):
        return ImageSlotGroup(config.name, config.a, config.b)
    return TreeSlotGroup(config.name, config.path, config.root)


def make_selector(config: AgentConfig) -> BootSelector:
    """The boot selector the configuration names."""
    boot = config.boot
    if boot.selector == "uboot":
        return UBootBootSelector(boot.fw_printenv, boot.fw_setenv, boot.max_attempts, boot.cmdline)
    return FileBootSelector(config.state_dir / "boot.json", boot.max_attempts)


class _StagingSink:
    """Passes a payload's checked bytes to its slot writer, counting progress and honouring cancel."""

    def __init__(self, agent: UpdateAgent, writer: SlotWriter) -> None:
        self._agent = agent
        self.writer = writer

    def write(self, chunk: memoryview, /) -> None:
        self._agent._staged(chunk, self.writer)


class UpdateAgent:
    """The update agent of one ECU, owning its state directory while open.

    Use as a context manager, or call :meth:`close`. Opening takes the state directory's lock, loads the record
    and brings an interrupted operation to a consistent state (:meth:`_recover`).

    Args:
        config: the agent configuration.
        boot: simulate a (re)boot first: the boot selector chooses the slot, counting an attempt (what
            ``sdv ota agent`` does at start); otherwise the last boot's slot is taken as running.
        selector: the boot selector (default: the one the configuration names).
        clock: the clock for expiry checks.

    Raises:
        StateDirectoryBusyError: another process holds the state directory.
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        boot: bool = False,
        selector: BootSelector | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.state_dir = config.state_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_handle = self._lock()
        self.selector = selector or make_selector(config)
        self.groups = [_make_group(slot) for slot in config.slots]
        self._clock = clock
        self._mutex = threading.RLock()
        self._listeners: list[Callable[[AgentStatus], None]] = []
        self._uploading = False
        self._upload_handle: BinaryIO | None = None
        self._cancel = threading.Event()
        self._staged_bytes = 0
        self._staging_total = 0
        self._crash = _CrashHook(os.environ.get(_CRASH_ENV, ""))
        self._record = read_record(self.state_dir)
        self._boot_info: tuple[SlotName, int] = ("A", 0)
        if not (self.state_dir / "state.json").exists():
            self._record = AgentRecord(active_slot=self.selector.booted())
            self._persist(self._record)
        try:
            booted = self.selector.boot() if boot else self.selector.booted()
            self._recover(booted, rebooted=boot)
            self._refresh_boot()
        except BaseException:
            self.close()
            raise

    # -- files, lock, persistence -------------------------------------------------------------------------------

    @property
    def incoming(self) -> Path:
        """The partially received bundle."""
        return self.state_dir / "incoming.sdvota"

    @property
    def time_state_path(self) -> Path:
        """The trusted time floor."""
        return self.state_dir / "time.json"

    def _lock(self) -> BinaryIO:
        handle = (self.state_dir / "lock").open("a+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().decode(errors="replace").strip() or "another process"
            handle.close()
            raise StateDirectoryBusyError(
                f"{self.state_dir} is in use by the update agent with pid {holder}; talk to it with --target"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()).encode())
        handle.flush()
        return handle

    def close(self) -> None:
        """Release the state directory."""
        if self._upload_handle is not None:
            self._upload_handle.close()
            self._upload_handle = None
        if not self._lock_handle.closed:
            self._lock_handle.close()

    def __enter__(self) -> UpdateAgent:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _persist(self, record: AgentRecord) -> None:
        write_atomically(self.state_dir / "state.json", record.model_dump_json(indent=1).encode())
        changed = record.state is not self._record.state
        self._record = record
        if changed:
            _logger.info("update agent: %s", record.state)
            self._crash.persisted(record.state)
            self._refresh_boot()
        self._notify()

    def _refresh_boot(self) -> None:
        """Read the boot selection once per state change (``fw_printenv`` is a process, not a per-chunk cost)."""
        self._boot_info = _boot_view(self._record, self.selector)

    def _go(self, target: AgentState, **changes: object) -> None:
        self._persist(transition(self._record, target, **changes))

    # -- status --------------------------------------------------------------------------------------------------

    @property
    def record(self) -> AgentRecord:
        """The current persisted record."""
        return self._record

    def status(self) -> AgentStatus:
        """The current status."""
        with self._mutex:
            booted, attempts = self._boot_info
            return AgentStatus(self._record, booted, attempts, self._staged_bytes, self._staging_total)

    def subscribe(self, listener: Callable[[AgentStatus], None]) -> Callable[[], None]:
        """Call ``listener`` with the status after every change and staging step; returns the unsubscriber."""
        with self._mutex:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._mutex, contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def _notify(self) -> None:
        if not self._listeners:
            return
        status = self.status()
        for listener in list(self._listeners):
            listener(status)

    def _require(self, action: str, *states: AgentState) -> None:
        if self._record.state not in states:
            allowed = ", ".join(state.value for state in states)
            raise AgentStateError(f"cannot {action} in state {self._record.state} (only in {allowed})")

    # -- transfer ------------------------------------------------------------------------------------------------

    def begin_transfer(self, size: int, bundle_sha256: str) -> TransferRecord:
        """Start receiving a bundle, or find the transfer of the same bundle to resume.

        Args:
            size: the bundle's length.
            bundle_sha256: SHA-256 of the whole bundle (lowercase hex), the transfer's id.

        Returns:
            The transfer, whose ``offset`` is where the upload continues.

        Raises:
            TransferInProgressError: another bundle is being received.
            AgentStateError: an update is under way (staged, activating, on trial).
            SizeLimitError: the bundle is larger than the limits allow.
            InsufficientSpaceError: the state directory has not enough free space.
        """
        with self._mutex:
            record = self._record
            if record.state in (_S.TRANSFERRING, _S.TRANSFERRED) and record.transfer is not None:
                if record.transfer.bundle_sha256 == bundle_sha256 and record.transfer.size == size:
                    return record.transfer  # resume (a received bundle: nothing left to send)
                raise TransferInProgressError(
                    f"a transfer of bundle {record.transfer.bundle_sha256[:16]} is in progress "
                    f"({record.transfer.offset} of {record.transfer.size} bytes); cancel it first"
                )
            if record.state not in AT_REST:
                raise AgentStateError(
                    f"cannot begin a transfer in state {record.state}: an update is under way; finish or cancel it"
                )
            limits = self.config.limits
            largest = limits.max_total_payload_bytes + limits.max_manifest_bytes + limits.max_signatures_bytes
            if size > largest + 16:
                raise SizeLimitError(f"a bundle of {size} bytes exceeds the limit of {largest + 16} bytes")
            free = shutil.disk_usage(self.state_dir).free
            needed = size + self.config.transfer.min_free_bytes
            if needed > free:
                raise InsufficientSpaceError(
                    f"{self.state_dir}: a bundle of {size} bytes needs {needed} bytes free "
                    f"(with a reserve of {self.config.transfer.min_free_bytes}), {free} are free"
                )
            with self.incoming.open("wb") as handle:
                os.fsync(handle.fileno())
            transfer = TransferRecord(bundle_sha256=bundle_sha256, size=size, offset=0)
            self._go(_S.TRANSFERRING, transfer=transfer, bundle=None, trial_slot=None, failure=None)
            return transfer

    @contextlib.contextmanager
    def upload(self) -> Iterator[None]:
        """Hold the one upload lease while a client streams chunks.

        Raises:
            TransferInProgressError: another upload is streaming.
        """
        with self._mutex:
            if self._uploading:
                raise TransferInProgressError(
                    "another upload is streaming to this agent; try again when it ends"
                )
            self._uploading = True
        try:
            yield
        finally:
            with self._mutex:
                self._uploading = False
                if self._upload_handle is not None:
                    self._upload_handle.close()
                    self._upload_handle = None

    def write_chunk(self, bundle_sha256: str, offset: int, data: bytes) -> TransferRecord:
        """Append the bytes at ``offset`` to the bundle being received and persist the new offset.

        When the last byte arrives, the whole file's SHA-256 is checked against the transfer's id: the state
        becomes ``Transferred``, or ``Failed`` (and the file is removed) when it differs.

        Raises:
            AgentStateError: no transfer is in progress.
            TransferOffsetError: another bundle, another offset than the persisted one, or past the end.
        """
        with self._mutex:
            self._require("receive bundle data", _S.TRANSFERRING)
            transfer = self._record.transfer
            if transfer is None:  # pragma: no cover - the record validator of TRANSFERRING keeps it set
                raise AgentStateError("no transfer is in progress")
            if bundle_sha256 != transfer.bundle_sha256:
                raise TransferOffsetError(
                    f"chunk for bundle {bundle_sha256[:16]}, the transfer in progress is {transfer.bundle_sha256[:16]}"
                )
            if offset != transfer.offset:
                raise TransferOffsetError(
                    f"chunk at offset {offset}, the agent continues at {transfer.offset}"
                )
            if len(data) > self.config.transfer.max_chunk_bytes:
                raise TransferOffsetError(
                    f"chunk of {len(data)} bytes exceeds {self.config.transfer.max_chunk_bytes} bytes"
                )
            if offset + len(data) > transfer.size:
                raise TransferOffsetError(
                    f"chunk ends at {offset + len(data)}, past the bundle's {transfer.size} bytes"
                )
            if self._upload_handle is None:
                self._upload_handle = self.incoming.open("r+b")
            handle = self._upload_handle
            handle.seek(offset)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())  # the bytes are on disk before the offset that covers them is
            transfer = transfer.model_copy(update={"offset": offset + len(data)})
            self._persist(updated(self._record, transfer=transfer))
            if transfer.offset == transfer.size:
                self._complete_transfer(transfer)
            return transfer

    def _complete_transfer(self, transfer: TransferRecord) -> None:
        if self._upload_handle is not None:
            self._upload_handle.close()
            self._upload_handle = None
        _, digest = hash_file(self.incoming)
        if digest != transfer.bundle_sha256:
            self.incoming.unlink(missing_ok=True)
            self._go(
                _S.FAILED,
                transfer=None,
                failure=f"received bundle has SHA-256 {digest}, the transfer announced {transfer.bundle_sha256}",
            )
            return
        self._go(_S.TRANSFERRED)

    def receive_file(self, path: Path, chunk_bytes: int = 1024 * 1024) -> TransferRecord:
        """Transfer a local bundle file (``sdv ota install``), resuming an interrupted transfer of it."""
        size, digest = hash_file(path)
        transfer = self.begin_transfer(size, digest)
        with self.upload(), path.open("rb") as source:
            source.seek(transfer.offset)
            while transfer.offset < size:
                transfer = self.write_chunk(digest, transfer.offset, source.read(chunk_bytes))
        return transfer

    # -- processing: verify and stage ----------------------------------------------------------------------------

    def process(self) -> BundleRecord:
        """Verify the received bundle and stage its payloads in the inactive slot (``Processing`` → ``Ready``).

        Returns:
            The staged bundle.

        Raises:
            AgentStateError: no received bundle.
            VerificationError: the bundle is refused (the state becomes ``Failed`` with the reason).
            OperationCancelledError: :meth:`cancel` stopped it (the state becomes ``Idle``).
        """
        with self._mutex:
            self._require("install", _S.TRANSFERRED)
            transfer = self._record.transfer
            sha = transfer.bundle_sha256 if transfer is not None else ""
            self._cancel.clear()
            self._go(_S.PROCESSING, trial_slot=other_slot(self._record.active_slot))
        writers: list[SlotWriter] = []
        try:
            manifest = self._stage(writers)
            for writer in writers:
                writer.finish()
        except OperationCancelledError:
            self._abandon(writers, _S.IDLE, None)
            raise
        except OtaError as error:
            self._abandon(writers, _S.FAILED, str(error))
            raise
        except BaseException as error:
            self._abandon(writers, _S.FAILED, f"staging failed: {error}")
            raise
        bundle = BundleRecord.of(manifest, sha)
        with self._mutex:
            self._go(_S.READY, bundle=bundle, transfer=None)
            self.incoming.unlink(missing_ok=True)
            self._staged_bytes = self._staging_total = 0
        return bundle

    def _verifier(self) -> BundleVerifier:
        state = load_time_state(self.time_state_path)
        return BundleVerifier(
            load_trust(self.config.trust, self.config.limits).signed,
            hardware_id=self.config.hardware_id,
            installed_counter=self._record.installed_counter,
            trusted_now=trusted_now(self._clock(), state),
            limits=self.config.limits,
        )

    def _group_for(self, payload: Payload, source: str) -> SlotGroup:
        slot = self.config.slot_for(payload)
        if slot is None:
            raise UnknownSlotError(
                f"{source}: payload {payload.name} targets {payload.target.model_dump()}, "
                f"which no slot of this ECU serves ({', '.join(s.name for s in self.config.slots)})"
            )
        return next(group for group in self.groups if group.name == slot.name)

    def _stage(self, writers: list[SlotWriter]) -> Manifest:
        trial = self._record.trial_slot
        if trial is None or trial == self._record.active_slot:  # pragma: no cover - set by process()
            raise AgentStateError("refusing to stage into the active slot")
        verifier = self._verifier()
        source = "bundle"
        with self.incoming.open("rb") as handle:
            header = read_header(handle, source, self.config.limits)
            manifest, _ = verifier.verify_header(header, source)  # before a single byte is written
            for payload in manifest.payloads:
                self._group_for(payload, source).check_space(trial, payload)
            self._staged_bytes, self._staging_total = 0, manifest.total_size
            handle.seek(0)

            def sink_for(payload: Payload) -> _StagingSink:
                writer = self._group_for(payload, source).writer(trial, payload)
                writers.append(writer)
                return _StagingSink(self, writer)

            verified = verifier.verify_stream(handle, source, sink_for)
        state = load_time_state(self.time_state_path)
        advanced = (state or TimeState(latest=verified.manifest.created)).advanced(verified.manifest.created)
        if advanced != state:
            save_time_state(self.time_state_path, advanced)
        return verified.manifest

    def _staged(self, chunk: memoryview, writer: SlotWriter) -> None:
        if self._cancel.is_set():
            raise OperationCancelledError("staging cancelled")
        writer.write(chunk)
        self._staged_bytes += len(chunk)
        self._crash.staged(self._staged_bytes)
        self._notify()

    def _abandon(self, writers: list[SlotWriter], state: AgentState, failure: str | None) -> None:
        for writer in writers:
            writer.abort()
        with self._mutex:
            self.incoming.unlink(missing_ok=True)
            self._staged_bytes = self._staging_total = 0
            self._go(state, transfer=None, bundle=None, trial_slot=None, failure=failure)

    # -- cancel --------------------------------------------------------------------------------------------------

    def cancel(self) -> AgentRecord:
        """Abandon a transfer or a staged bundle, where that is safe (never once activation began).

        While processing, staging stops at the next chunk and the state becomes ``Idle``.

        Raises:
            AgentStateError: nothing to cancel, or activation began (use :meth:`rollback`).
        """
        with self._mutex:
            state = self._record.state
            if state is _S.PROCESSING:
                self._cancel.set()
                return self._record
            self._require(
                "cancel",
                _S.TRANSFERRING, _S.TRANSFERRED, _S.READY, _S.FAILED, _S.ACTIVATED, _S.ROLLED_BACK,
            )  # fmt: skip
            if self._upload_handle is not None:
                self._upload_handle.close()
                self._upload_handle = None
            self.incoming.unlink(missing_ok=True)
            self._go(_S.IDLE, transfer=None, bundle=None, trial_slot=None, failure=None)
            return self._record

    # -- activation, commit, rollback ----------------------------------------------------------------------------

    def _reboot(self) -> SlotName | None:
        """Reboot into what the boot selector says: the reboot command, or an in-process switch.

        Returns:
            The slot now running, or ``None`` when a real reboot was requested.
        """
        if self.config.reboot_command:
            _logger.warning("rebooting: %s", " ".join(self.config.reboot_command))
            subprocess.run(self.config.reboot_command, check=False)
            return None
        if isinstance(self.selector, UBootBootSelector) and self.selector.cmdline is not None:
            _logger.warning("the next boot starts the new selection; configure reboot_command to reboot")
            return None
        booted = self.selector.boot()
        self._switch_trees(booted)
        return booted

    def _switch_trees(self, slot: SlotName) -> None:
        for group in self.groups:
            group.switch(slot)

    def activate(self) -> AgentRecord:
        """Start the staged bundle on trial: ``Ready`` → ``Activating`` → (boot) → ``Verifying``."""
        with self._mutex:
            self._require("activate", _S.READY)
            self._go(_S.ACTIVATING)
            self._continue_activation()
            return self._record

    def _continue_activation(self) -> None:
        trial = self._record.trial_slot
        if trial is None:  # pragma: no cover - READY always has a trial slot
            raise AgentStateError("no trial slot")
        self.selector.set_trial(trial)
        booted = self._reboot()
        if booted is not None:
            self._after_boot(booted)

    def _after_boot(self, booted: SlotName) -> None:
        """The decision after a boot with an update on trial (Activating, Verifying)."""
        trial = self._record.trial_slot
        if booted != trial:
            self._rollback(
                f"the bootloader started slot {booted}, not slot {trial} on trial "
                "(its boot attempts ran out, or the activation was interrupted)"
            )
            return
        if self._record.state is _S.ACTIVATING:
            self._go(_S.VERIFYING)
        failure = self._health_check(booted)
        if failure is not None:
            self._rollback(failure)

    def _health_check(self, slot: SlotName) -> str | None:
        check = self.config.health_check
        if check is None:
            return None
        environment = {**os.environ, "SDV_OTA_SLOT": slot}
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
            return f"health check {check.command[0]} did not finish within {check.timeout_s} s"
        except OSError as error:
            return f"health check {check.command[0]} cannot run: {error}"
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
            return f"health check {check.command[0]} exited with {result.returncode}: {detail[0]}"
        return None

    def mark_good(self) -> AgentRecord:
        """Commit the slot on trial: it becomes the active slot, and its bundle the installed one.

        With no update under way and the committed slot running, this only refreshes the slot's boot counter
        (RAUC's ``mark-good`` at every boot), so a boot-time unit may call it unconditionally.
        """
        with self._mutex:
            if self._record.state in AT_REST and self.selector.booted() == self._record.active_slot:
                self.selector.mark_good(self._record.active_slot)
                return self._record
            self._require("mark good", _S.VERIFYING)
            trial = self._record.trial_slot
            booted = self.selector.booted()
            if trial is None or booted != trial:
                raise AgentStateError(f"slot {trial} is on trial but slot {booted} is running; reboot first")
            self.selector.mark_good(trial)
            self._go(
                _S.ACTIVATED, active_slot=trial, trial_slot=None, installed=self._record.bundle, failure=None
            )
            return self._record

    def rollback(self, reason: str = "rollback requested") -> AgentRecord:
        """Go back to the active slot from a trial (``Activating``/``Verifying`` → ``RollingBack`` → ``RolledBack``)."""
        with self._mutex:
            self._require("roll back", _S.ACTIVATING, _S.VERIFYING)
            self._rollback(reason)
            return self._record

    def _rollback(self, reason: str) -> None:
        if self._record.state is not _S.ROLLING_BACK:
            self._go(_S.ROLLING_BACK, failure=reason)
        trial = self._record.trial_slot
        if trial is not None:
            self.selector.mark_bad(trial)
        booted: SlotName | None = self.selector.booted()
        if booted != self._record.active_slot:
            booted = self._reboot()
        if booted is None:
            return  # the reboot finishes the rollback (_recover)
        self._switch_trees(booted)
        self._go(_S.ROLLED_BACK, trial_slot=None)

    # -- recovery ------------------------------------------------------------------------------------------------

    def _recover(self, booted: SlotName, *, rebooted: bool) -> None:
        """Bring the record to a consistent state after a start, whatever instant the last process stopped at."""
        state = self._record.state
        transfer = self._record.transfer
        if state is _S.TRANSFERRING and transfer is not None:
            on_disk = self.incoming.stat().st_size if self.incoming.exists() else -1
            if on_disk < transfer.offset:  # cannot happen while fsync holds its promise; start over then
                _logger.warning("partial bundle holds %d bytes, less than the persisted offset", on_disk)
                transfer = transfer.model_copy(update={"offset": 0})
                self._persist(updated(self._record, transfer=transfer))
            with self.incoming.open("ab") as handle:
                handle.truncate(transfer.offset)
                os.fsync(handle.fileno())
        elif state is _S.PROCESSING:
            self._abandon_staging()
        elif state is _S.ACTIVATING and not rebooted and booted != self._record.trial_slot:
            self._continue_activation()  # the same boot: repeat the idempotent activation steps
        elif state is _S.ACTIVATING or (state is _S.VERIFYING and rebooted):
            self._after_boot(booted)  # a boot on trial: stay on trial, or fall back
        elif state is _S.ROLLING_BACK:
            self._rollback(self._record.failure or "rollback interrupted")
        elif rebooted and booted == self._record.active_slot:
            self.selector.mark_good(booted)  # a good boot refreshes the counter (RAUC's mark-good service)
        if self._record.state in AT_REST or self._record.state in (_S.TRANSFERRING, _S.TRANSFERRED, _S.READY):
            self._switch_trees(self.selector.booted())

    def _abandon_staging(self) -> None:
        """Staging was interrupted: drop its leftovers; the inactive slot is rewritten from its start."""
        for group in self.groups:
            if isinstance(group, TreeSlotGroup) and group.root.exists():
                for leftover in group.root.glob(".*.incoming.tar"):
                    leftover.unlink()
                for leftover in group.root.glob(".*.new"):
                    shutil.rmtree(leftover, ignore_errors=True)
        self._go(_S.TRANSFERRED, trial_slot=None)
