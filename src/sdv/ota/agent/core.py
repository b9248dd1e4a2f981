"""The ECU's update agent: receives a bundle, verifies and stages it in the inactive slot, activates it on
trial, commits or rolls back. The rules live in :mod:`sdv.ota.agent.state`; this orchestrator does the I/O.

The state directory's files are described in :mod:`sdv.ota.agent.store`.

Invariants:

* a transfer begins only with the bundle's signed header, verified (signatures, expiry, hardware id, counters,
  sizes, slot space) before a single payload byte is accepted; a refused header creates no transfer state;
* the persisted transfer offset is advanced only after the bytes up to it were written and fsync-ed (in batches,
  see :mod:`sdv.ota.agent.transfer`), so it never exceeds what the partial file holds; on start the file is
  truncated to the persisted offset and the transfer resumes there;
* payloads are written only into the slot that is not the active one; the active slot is never opened;
* a state is persisted *before* the step it names starts, and every step is idempotent, so a restart at any
  instant repeats the interrupted step or takes the documented way back (see :meth:`UpdateAgent._recover`);
* the installed bundle and its release counter (the anti-rollback floor) change only at commit (mark-good);
* a bundle that fails verification leaves the record in ``Failed`` with the reason, no partial bundle file and no
  tree in the slots (verification of the header happens before the first payload byte is written).

The fault-injection test hook ``SDV_OTA_TEST_CRASH`` is described in :mod:`sdv.ota.agent.store`.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from sdv.ota.agent.boot import BootSelector
from sdv.ota.agent.config import AgentConfig
from sdv.ota.agent.groups import Sides, SlotGroups
from sdv.ota.agent.records import AgentRecords, journaled
from sdv.ota.agent.slots import PayloadOrigin, SlotGroup, SlotWriter
from sdv.ota.agent.state import (
    AT_REST,
    AgentRecord,
    AgentState,
    BundleRecord,
    GroupRecord,
    TransferRecord,
    check_activation,
    committed_groups,
    other_slot,
    transition,
    trial_sides,
    updated,
    with_bad_trial_sides,
    without_trial,
)
from sdv.ota.agent.store import (
    AgentStatus,
    CrashHook,
    GroupBoot,
    has_record,
    local_status,
    lock_state_directory,
    read_record,
    write_record,
)
from sdv.ota.agent.transfer import TransferStore
from sdv.ota.bundle.format import read_header
from sdv.ota.bundle.manifest import Manifest, Payload
from sdv.ota.bundle.rollback import ComponentCounters
from sdv.ota.bundle.store import (
    hash_file,
    load_time_state,
    load_trust,
    read_bundle_header,
    save_time_state,
)
from sdv.ota.bundle.trusted_time import TimeState, trusted_now
from sdv.ota.bundle.verifier import BundleVerifier
from sdv.ota.errors import (
    AgentStateError,
    BundleFormatError,
    InsufficientSpaceError,
    OperationCancelledError,
    OtaError,
    TransferInProgressError,
)

__all__ = ["AgentStatus", "UpdateAgent", "local_status", "read_record"]

_logger = logging.getLogger(__name__)
_S = AgentState


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
        self._lock_handle = lock_state_directory(self.state_dir)
        self.groups = SlotGroups(config, selector)
        self._clock = clock
        self._mutex = threading.RLock()
        self._listeners: list[Callable[[AgentStatus], None]] = []
        self._uploading = False
        self.transfers = TransferStore(self.state_dir, config.transfer, config.limits)
        self._cancel = threading.Event()
        self._staged_bytes = 0
        self._staging_total = 0
        self._crash = CrashHook.from_environment()
        self._record = AgentRecord()
        self._boot_info: tuple[GroupBoot, ...] = ()
        try:
            self.records = AgentRecords(
                config, clock
            )  # the event log, the report key (sdv.ota.agent.records)
            names = self.groups.names
            if has_record(self.state_dir):
                self._record = read_record(self.state_dir)
                if self._record.with_groups(names) != self._record:  # an older record, or a new group
                    self._persist(updated(self._record, groups=self._record.with_groups(names).groups))
            else:  # the first start on this ECU: what runs now is the committed software
                first = GroupRecord(active_slot=self.groups.boot_selector.adopt_running())
                groups = {name: first if name == names[0] else GroupRecord() for name in names}
                self._persist(AgentRecord(groups=groups))
            self.groups.seed(self._record)
            self.records.started(self._record)
            self._recover(self.groups.start(boot=boot), rebooted=boot)
            self._refresh_boot()
        except BaseException:
            self.close()
            raise

    # -- files, lock, persistence -------------------------------------------------------------------------------

    @property
    def incoming(self) -> Path:
        """The partially received bundle."""
        return self.transfers.path

    @property
    def time_state_path(self) -> Path:
        """The trusted time floor."""
        return self.state_dir / "time.json"

    def close(self) -> None:
        """Release the state directory (bytes received so far are made durable first)."""
        try:
            self.sync_transfer()
        finally:
            self.transfers.close()
        if not self._lock_handle.closed:
            self._lock_handle.close()

    def __enter__(self) -> UpdateAgent:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _persist(self, record: AgentRecord) -> None:
        changed = record.state is not self._record.state
        if changed:  # the event log entry is on disk before the change it records
            self.records.state_changed(self._record, record)
        write_record(self.state_dir, record)
        self._record = record
        if changed:
            _logger.info("update agent: %s", record.state)
            self._crash.persisted(record.state)
            self._refresh_boot()
        self._notify()

    def _refresh_boot(self) -> None:
        """Read the boot selection once per state change and after each change of it (``fw_printenv`` is a
        process, not a per-chunk cost)."""
        self._boot_info = self.groups.view(self._record)

    def _go(self, target: AgentState, **changes: object) -> None:
        self._persist(transition(self._record, target, **changes))

    # -- status --------------------------------------------------------------------------------------------------

    @property
    def record(self) -> AgentRecord:
        """The current persisted record."""
        return self._record

    def status(self) -> AgentStatus:
        """The current status, without waiting for a step under way (a health check may run for a minute).

        The record and the boot view are immutable values replaced whole, so this snapshot needs no lock.
        """
        record, groups = self._record, self._boot_info
        first = groups[0] if groups else GroupBoot("", record.active_slot, 0)
        return AgentStatus(
            record, first.booted_slot, first.attempts_left, self._staged_bytes, self._staging_total, groups
        )

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
            try:
                listener(status)
            except Exception:  # a watcher's failure must never stop an update step
                _logger.exception("status listener %r failed", listener)

    def _require(self, action: str, *states: AgentState) -> None:
        if self._record.state not in states:
            allowed = ", ".join(state.value for state in states)
            raise AgentStateError(f"cannot {action} in state {self._record.state} (only in {allowed})")

    # -- transfer ------------------------------------------------------------------------------------------------

    @journaled("begin a transfer")
    def begin_transfer(self, size: int, bundle_sha256: str, header: bytes) -> TransferRecord:
        """Verify a bundle's header and start receiving it, or find the transfer of the same bundle to resume.

        Args:
            size: the bundle's length.
            bundle_sha256: SHA-256 of the whole bundle (lowercase hex), the transfer's id.
            header: the bundle's header (magic, manifest section, signature section), verified before any
                payload byte is accepted; it becomes the received file's first bytes.

        Returns:
            The transfer, whose ``offset`` is where the upload continues (after the header for a new one).

        Raises:
            TransferInProgressError: another bundle is being received.
            AgentStateError: an update is under way (staged, activating, on trial).
            VerificationError: the header is refused (no header, signatures, expiry, hardware id, counters,
                sizes, a slot the ECU lacks, or another header than a resumed transfer began with).
            InsufficientSpaceError: the state directory or a slot has not enough free space.
            TransferOffsetError: a size or id that cannot be a bundle's.
            SizeLimitError: the bundle is larger than the limits allow.
        """
        with self._mutex:
            record = self._record
            self.transfers.check_announcement(size, bundle_sha256)
            if record.state in (_S.TRANSFERRING, _S.TRANSFERRED) and record.transfer is not None:
                if record.transfer.bundle_sha256 == bundle_sha256 and record.transfer.size == size:
                    self._admit(header, size, bundle_sha256)
                    self.sync_transfer()
                    transfer = self._record.transfer
                    if transfer is None:  # pragma: no cover - syncing keeps the transfer
                        raise AgentStateError("no transfer is in progress")
                    self.transfers.check_header(transfer, header)
                    return transfer  # resume (a received bundle: nothing left to send)
                raise TransferInProgressError(
                    f"a transfer of bundle {record.transfer.bundle_sha256[:16]} is in progress "
                    f"({record.transfer.offset} of {record.transfer.size} bytes); cancel it first"
                )
            if record.state not in AT_REST:
                raise AgentStateError(
                    f"cannot begin a transfer in state {record.state}: an update is under way; finish or cancel it"
                )
            self._admit(header, size, bundle_sha256)
            transfer = self.transfers.begin(size, bundle_sha256, header)
            self._go(_S.TRANSFERRING, transfer=transfer, bundle=None, failure=None)
            return transfer

    def _admit(self, header: bytes, size: int, bundle_sha256: str) -> None:
        """Everything the header alone decides, through the verifier's one header check, and slot space."""
        source = f"bundle {bundle_sha256[:16]}"
        if not header:
            raise BundleFormatError(
                f"{source}: the transfer carries no bundle header; this agent verifies the signed header "
                "before it accepts payload bytes (send the header with BeginTransfer, as sdv ota push does)"
            )
        manifest = self._verifier().verify_header_bytes(header, source, bundle_size=size)
        for payload in manifest.payloads:
            group = self._group_for(payload, source)
            group.check_space(other_slot(self._record.groups[group.name].active_slot), payload)

    def sync_transfer(self) -> None:
        """Make the bytes received so far durable and persist the offset covering them."""
        with self._mutex:
            transfer = self._record.transfer
            if self._record.state is _S.TRANSFERRING and transfer is not None:
                synced = self.transfers.sync(transfer)
                if synced != transfer:
                    self._persist(updated(self._record, transfer=synced))

    @contextlib.contextmanager
    def upload(self) -> Iterator[None]:
        """Hold the one upload lease while a client streams chunks.

        Raises:
            TransferInProgressError: another upload is streaming.
        """
        with self._mutex:
            if self._uploading:
                error = TransferInProgressError(
                    "another upload is streaming to this agent; try again when it ends"
                )
                self.records.refused("upload", error, self._record.state)
                raise error
            self._uploading = True
        try:
            yield
        finally:
            with self._mutex:
                self._uploading = False
                try:
                    self.sync_transfer()  # the end of every upload stream is durable
                finally:
                    self.transfers.close()

    @journaled("receive bundle data")
    def write_chunk(self, bundle_sha256: str, offset: int, data: bytes) -> TransferRecord:
        """Append the bytes at ``offset`` to the bundle being received; persist the offset when it became durable.

        When the last byte arrives, the whole file's SHA-256 is checked against the transfer's id: the state
        becomes ``Transferred``, or ``Failed`` (and the file is removed) when it differs.

        Raises:
            AgentStateError: no transfer is in progress.
            TransferOffsetError: another bundle, another offset than the persisted one, or past the end.
        """
        with self._mutex:
            self._require("receive bundle data", _S.TRANSFERRING)
            transfer = self._record.transfer
            if transfer is None:  # pragma: no cover - a record in Transferring always has its transfer
                raise AgentStateError("no transfer is in progress")
            durable = self.transfers.append(transfer, bundle_sha256, offset, data)
            if durable != transfer:
                self._persist(updated(self._record, transfer=durable))
            transfer = durable
            if transfer.offset == transfer.size:
                self._complete_transfer(transfer)
            return transfer

    def _complete_transfer(self, transfer: TransferRecord) -> None:
        digest = self.transfers.digest()
        if digest != transfer.bundle_sha256:
            self.transfers.discard()
            self._go(
                _S.FAILED,
                transfer=None,
                failure=f"received bundle has SHA-256 {digest}, the transfer announced {transfer.bundle_sha256}",
            )
            return
        self._go(_S.TRANSFERRED)

    def receive_file(self, path: Path, chunk_bytes: int | None = None) -> TransferRecord:
        """Transfer a local bundle file (``sdv ota install``), resuming an interrupted transfer of it, in chunks of
        ``chunk_bytes`` (default: the configured largest chunk, at most 1 MiB)."""
        chunk_bytes = chunk_bytes or min(1024 * 1024, self.config.transfer.max_chunk_bytes)
        size, digest = hash_file(path)
        transfer = self.begin_transfer(size, digest, read_bundle_header(path, self.config.limits).encode())
        with self.upload(), path.open("rb") as source:
            offset = source.seek(transfer.offset)
            while data := source.read(chunk_bytes):
                transfer = self.write_chunk(digest, offset, data)
                offset += len(data)
        return transfer

    # -- processing: verify and stage ----------------------------------------------------------------------------

    @journaled("install")
    def process(self) -> BundleRecord:
        """Verify the received bundle and stage its payloads in the inactive slot (``Processing`` → ``Ready``).

        Returns:
            The staged bundle.

        Raises:
            AgentStateError: no received bundle.
            VerificationError: the bundle is refused (the state becomes ``Failed`` with the reason).
            InsufficientSpaceError: a slot cannot hold a payload (from the header, or a tree counted in its file
                system's blocks and inodes before unpacking); the bundle is kept and the state returns to
                ``Transferred`` with the reason, so the install can be retried once there is space.
            OperationCancelledError: :meth:`cancel` stopped it (the state becomes ``Idle``).
            OtaError: the trust file or time state cannot be read (the state stays ``Transferred``).
        """
        with self._mutex:
            self._require("install", _S.TRANSFERRED)
            transfer = self._record.transfer
            sha = transfer.bundle_sha256 if transfer is not None else ""
            verifier = self._verifier()  # an unreadable trust file must not cost the received bundle
            self._cancel.clear()
            self._go(_S.PROCESSING, groups=without_trial(self._record), failure=None)
        writers: list[SlotWriter] = []
        try:
            manifest = self._stage(verifier, f"bundle {sha[:16]}", writers)
            for writer in writers:
                writer.finish()
        except InsufficientSpaceError as error:  # the bundle is kept: the install can be retried
            for writer in writers:
                writer.abort()
            with self._mutex:
                self._staged_bytes = self._staging_total = 0
                self._go(_S.TRANSFERRED, groups=without_trial(self._record), failure=str(error))
            raise
        except OperationCancelledError:
            self._abandon(writers, _S.IDLE, None)
            raise
        except OtaError as error:
            self._abandon(writers, _S.FAILED, str(error))
            raise
        except BaseException as error:
            self._abandon(writers, _S.FAILED, f"staging failed: {error}")
            raise
        targets = {payload.name: self._group_for(payload, sha).name for payload in manifest.payloads}
        bundle = BundleRecord.of(manifest, sha).model_copy(update={"targets": targets})
        with self._mutex:
            staged = {name: group.staged() for name, group in self._record.groups.items()}
            self._go(_S.READY, bundle=bundle, transfer=None, groups=staged)
            self.transfers.discard()
            self._staged_bytes = self._staging_total = 0
        return bundle

    def _verifier(self) -> BundleVerifier:
        state = load_time_state(self.time_state_path)
        groups = self._record.groups
        counters = ComponentCounters(
            counters={name: group.counter for name, group in groups.items()},
            floors={name: group.floor for name, group in groups.items()},
            components=self.groups.components,
            allow_reinstall=self.config.allow_reinstall,
        )
        return BundleVerifier(
            load_trust(self.config.trust, self.config.limits).signed,
            hardware_id=self.config.hardware_id,
            rollback=counters,
            trusted_now=trusted_now(self._clock(), state),
            limits=self.config.limits,
        )

    def _group_for(self, payload: Payload, source: str) -> SlotGroup:
        return self.groups.group_for(payload, source)

    def _stage(self, verifier: BundleVerifier, source: str, writers: list[SlotWriter]) -> Manifest:
        with self.incoming.open("rb") as handle:
            header = read_header(handle, source, self.config.limits)
            manifest, _ = verifier.verify_header(header, source)  # before a single byte is written
            groups = dict(self._record.groups)
            for payload in manifest.payloads:
                group = self._group_for(payload, source)
                trial = other_slot(groups[group.name].active_slot)
                group.check_space(trial, payload)
                groups[group.name] = groups[group.name].model_copy(update={"trial_slot": trial})
            with self._mutex:  # the sides written are on record before the first byte reaches them
                self._persist(updated(self._record, groups=groups))
            self._staged_bytes, self._staging_total = 0, manifest.total_size
            handle.seek(0)
            offsets, offset = {}, header.encoded_length
            for payload in manifest.payloads:
                offsets[payload.name], offset = offset, offset + payload.size

            def sink_for(payload: Payload) -> _StagingSink:
                group = self._group_for(payload, source)
                trial = self._record.groups[group.name].trial_slot
                if trial is None or trial == self._record.groups[group.name].active_slot:  # pragma: no cover
                    raise AgentStateError(f"slot group {group.name}: refusing to stage into the active side")
                # a tree is unpacked from the received bundle once verified: its bytes are never copied
                origin = PayloadOrigin(self.incoming, offsets[payload.name], payload.size)
                writer = group.writer(trial, payload, origin)
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
            self.transfers.discard()
            self._staged_bytes = self._staging_total = 0
            self._go(state, transfer=None, bundle=None, groups=without_trial(self._record), failure=failure)

    # -- cancel --------------------------------------------------------------------------------------------------

    @journaled("cancel")
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
            self.transfers.discard()
            self._go(_S.IDLE, transfer=None, bundle=None, groups=without_trial(self._record), failure=None)
            return self._record

    # -- activation, commit, rollback ----------------------------------------------------------------------------

    def _reboot(self, changing: set[str]) -> Sides | None:
        """Start what the boot selectors now say for the groups in ``changing``: a real reboot when the
        bootloader's group changes sides and the ECU has one, otherwise in-process (the trees follow).

        Returns:
            Each group's running side, or ``None`` when a real reboot was requested.
        """
        if self.groups.needs_reboot(changing):
            if self.config.reboot_command:
                _logger.warning("rebooting: %s", " ".join(self.config.reboot_command))
                subprocess.run(self.config.reboot_command, check=False)
            else:
                _logger.warning("the next boot starts the new selection; configure reboot_command to reboot")
            return None
        booted = self.groups.boot_in_process(changing)
        self._refresh_boot()
        return booted

    @journaled("activate")
    def activate(self) -> AgentRecord:
        """Start the staged bundle on trial: ``Ready`` → ``Activating`` → (boot) → ``Verifying``.

        Only the slot groups the bundle carries change sides; every other group keeps running its committed
        side.

        Raises:
            AgentStateError: no staged bundle.
            BadSlotError: a group's trial side failed its trial and was not installed anew since.
        """
        with self._mutex:
            self._require("activate", _S.READY)
            check_activation(self._record)
            self._go(_S.ACTIVATING)
            self._continue_activation()
            return self._record

    def _continue_activation(self) -> None:
        trial = trial_sides(self._record)
        if not trial:  # pragma: no cover - READY always has a group on trial
            raise AgentStateError("no slot group is on trial")
        self.groups.set_trial(trial)
        self._refresh_boot()
        booted = self._reboot(set(trial))
        if booted is not None:
            self._after_boot(booted)

    def _after_boot(self, booted: Sides) -> None:
        """The decision after a boot with an update on trial (Activating, Verifying)."""
        trial = trial_sides(self._record)
        for name, slot in trial.items():
            if booted[name] != slot:
                self._rollback(
                    f"slot group {name}: the bootloader started side {booted[name]}, not side {slot} on trial "
                    "(its boot attempts ran out, or the activation was interrupted)"
                )
                return
        self.groups.switch_trees(booted)  # the trial sides' trees go live with them (after a real reboot too)
        if self._record.state is _S.ACTIVATING:
            self._go(_S.VERIFYING)
        failure = self.groups.health_check(trial)
        if failure is not None:
            self._rollback(failure)

    @journaled("mark good")
    def mark_good(self) -> AgentRecord:
        """Commit the groups on trial: their trial sides become active, the bundle their installed one, its
        release counter their counter, and its floors are raised.

        With no update under way and every group running its committed side, this only refreshes the boot
        counters (RAUC's ``mark-good`` at every boot), so a boot-time unit may call it unconditionally.
        """
        with self._mutex:
            record = self._record
            booted = self.groups.booted()
            active = {name: group.active_slot for name, group in record.groups.items() if name in booted}
            if record.state in AT_REST and booted == active:
                self.groups.mark_good(active)
                self._refresh_boot()
                return record
            self._require("mark good", _S.VERIFYING)
            trial = trial_sides(record)
            for name, slot in trial.items():
                if booted[name] != slot:
                    raise AgentStateError(
                        f"slot group {name}: side {slot} is on trial but side {booted[name]} is running; "
                        "reboot first"
                    )
            self.groups.mark_good(trial)
            self._go(_S.ACTIVATED, groups=committed_groups(record), installed=record.bundle, failure=None)
            return self._record

    @journaled("roll back")
    def rollback(self, reason: str = "rollback requested") -> AgentRecord:
        """Go back to the active sides from a trial (``Activating``/``Verifying`` → ``RollingBack`` →
        ``RolledBack``); the trial sides are marked bad."""
        with self._mutex:
            self._require("roll back", _S.ACTIVATING, _S.VERIFYING)
            self._rollback(reason)
            return self._record

    def _rollback(self, reason: str) -> None:
        if self._record.state is not _S.ROLLING_BACK:
            self._go(_S.ROLLING_BACK, failure=reason)
        trial = trial_sides(self._record)
        self.groups.mark_bad(trial)
        groups = with_bad_trial_sides(self._record)
        if groups != self._record.groups:
            self._persist(updated(self._record, groups=groups))
        self._refresh_boot()
        running = self.groups.booted()
        changing = {name for name in trial if running[name] != self._record.groups[name].active_slot}
        booted = self._reboot(changing) if changing else running
        if booted is None:
            return  # the reboot finishes the rollback (_recover)
        self.groups.switch_trees(booted)
        self._go(_S.ROLLED_BACK, groups=without_trial(self._record))

    # -- recovery ------------------------------------------------------------------------------------------------

    def _recover(self, booted: Sides, *, rebooted: bool) -> None:
        """Bring the record to a consistent state after a start, whatever instant the last process stopped at."""
        state = self._record.state
        transfer = self._record.transfer
        trial = trial_sides(self._record)
        if state is _S.TRANSFERRING and transfer is not None:
            resumed = self.transfers.resume(transfer)
            if resumed != transfer:
                self._persist(updated(self._record, transfer=resumed))
        elif state is _S.PROCESSING:
            self._abandon_staging()
        elif (
            state is _S.ACTIVATING
            and not rebooted
            and any(booted[name] != side for name, side in trial.items())
        ):
            self._continue_activation()  # the same boot: repeat the idempotent activation steps
        elif state is _S.ACTIVATING or (state is _S.VERIFYING and rebooted):
            self._after_boot(booted)  # a boot on trial: stay on trial, or fall back
        elif state is _S.ROLLING_BACK:
            self._rollback(self._record.failure or "rollback interrupted")
        elif rebooted:
            for name, side in booted.items():
                active = self._record.groups[name].active_slot
                if side == active:  # a good boot refreshes the counter (RAUC's mark-good service)
                    self.groups.mark_good({name: active})
                else:
                    _logger.warning(
                        "slot group %s: the bootloader started side %s although side %s is committed; "
                        "leaving the selection alone",
                        name,
                        side,
                        active,
                    )
        if self._record.state in AT_REST or self._record.state in (_S.TRANSFERRING, _S.TRANSFERRED, _S.READY):
            self.groups.switch_trees(self.groups.booted())

    def _abandon_staging(self) -> None:
        """Staging was interrupted: drop its leftovers; the inactive sides are rewritten from their start."""
        self.groups.remove_staging_leftovers()
        self._go(_S.TRANSFERRED, groups=without_trial(self._record))
