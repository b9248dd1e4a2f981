"""The ECU's update agent: receives a bundle, verifies and stages it into the inactive side of each slot group it
carries, activates those groups on trial, commits or rolls back. The rules live in :mod:`sdv.ota.agent.state`;
this orchestrator does the I/O, in steps of one module each: :mod:`~sdv.ota.agent.transfer_steps`,
:mod:`~sdv.ota.agent.install_steps`, :mod:`~sdv.ota.agent.activation_steps`, on the shared
:mod:`~sdv.ota.agent.base`; this module opens the agent and recovers after a restart.

The state directory's files are described in :mod:`sdv.ota.agent.store`.

Invariants:

* a transfer begins only with the bundle's signed header, verified (signatures, expiry, hardware id, counters,
  sizes, slot space) before a single payload byte is accepted; a refused header creates no transfer state;
* the persisted transfer offset is advanced only after the bytes up to it were written and fsync-ed (in batches,
  see :mod:`sdv.ota.agent.transfer`), so it never exceeds what the partial file holds; on start the file is
  truncated to the persisted offset and the transfer resumes there;
* payloads are written only into the side of their slot group that is not the active one; the active side is
  never opened; a bundle changes only the groups it carries;
* a state is persisted *before* the step it names starts, and every step is idempotent, so a restart at any
  instant repeats the interrupted step or takes the documented way back (see :meth:`UpdateAgent._recover`);
* each group's installed bundle, release counter and floor change only at commit (mark-good);
* a bundle that fails verification leaves the record in ``Failed`` with the reason, no partial bundle file and no
  tree in the slots (verification of the header happens before the first payload byte is written).

An :class:`~sdv.ota.agent.store.AgentObserver` is told of every persisted state and staged chunk (the fault-injection
tests cut the power through one).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType

from sdv.ota.agent.activation_steps import ActivationSteps
from sdv.ota.agent.boot import BootSelector
from sdv.ota.agent.config import AgentConfig
from sdv.ota.agent.consent import ConsentChannel
from sdv.ota.agent.groups import Sides, SlotGroups
from sdv.ota.agent.install_steps import InstallSteps
from sdv.ota.agent.preconditions import SignalSource, VehicleGate
from sdv.ota.agent.records import AgentRecords
from sdv.ota.agent.software_id import SoftwarePublisher
from sdv.ota.agent.state import (
    AT_REST,
    AgentRecord,
    AgentState,
    GroupRecord,
    trial_sides,
    updated,
)
from sdv.ota.agent.store import (
    AgentObserver,
    AgentStatus,
    GroupBoot,
    has_record,
    local_status,
    lock_state_directory,
    read_record,
)
from sdv.ota.agent.transfer import TransferStore
from sdv.ota.agent.transfer_steps import TransferSteps

__all__ = ["AgentStatus", "UpdateAgent", "local_status", "read_record"]

_logger = logging.getLogger(__name__)
_S = AgentState


class UpdateAgent(TransferSteps, InstallSteps, ActivationSteps):
    """The update agent of one ECU, owning its state directory while open.

    Use as a context manager, or call :meth:`close`. Opening takes the state directory's lock, loads the record
    and brings an interrupted operation to a consistent state (:meth:`_recover`).

    Args:
        config: the agent configuration.
        boot: simulate a (re)boot first: the boot selector chooses the slot, counting an attempt (what
            ``sdv ota agent`` does at start); otherwise the last boot's slot is taken as running.
        selector: the boot selector (default: the one the configuration names).
        clock: the clock for expiry checks.
        observer: told of every persisted state and staged chunk (default: nobody).
        signals: the live vehicle signals the preconditions read (:mod:`sdv.ota.signals`; default: none, so
            any precondition is unmet).
        consent: the cockpit that shows notices and takes the driver's answer (default: none).
        publisher: where the software identification is published at start and after each update (default:
            nowhere).

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
        observer: AgentObserver | None = None,
        signals: SignalSource | None = None,
        consent: ConsentChannel | None = None,
        publisher: SoftwarePublisher | None = None,
    ) -> None:
        self.config = config
        self.state_dir = config.state_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock_handle = lock_state_directory(self.state_dir)
        self.groups = SlotGroups(config, selector)
        self._clock = clock
        self.gate, self.consent = VehicleGate(config.vehicle, signals, clock), consent  # vehicle_steps
        self.last_check, self.notice_id, self.publisher, self.consent_state = None, None, publisher, ""
        self._mutex = threading.RLock()
        self._listeners: list[Callable[[AgentStatus], None]] = []
        self._uploading = False
        self.transfers = TransferStore(self.state_dir, config.transfer, config.limits)
        self._cancel = threading.Event()
        self._watch = None
        self._staged_bytes = 0
        self._staging_total = 0
        self._observer = observer or AgentObserver()
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
            self.publish_software()  # the committed software's identification (sdv.ota.agent.software_id)
            self._watch_trial()  # an update found on trial after a restart is watched again
        except BaseException:
            self.close()
            raise

    # -- recovery ------------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the state directory (bytes received so far are made durable first)."""
        self._stop_watch()
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

    def _recover(self, booted: Sides, *, rebooted: bool) -> None:
        """Bring the record to a consistent state after a start, whatever instant the last process stopped at."""
        state = self._record.state
        transfer = self._record.transfer
        trial = trial_sides(self._record)
        if state in (_S.TRANSFERRING, _S.TRANSFERRED, _S.PROCESSING):
            self._restore_placements()  # where the payloads received straight into slots lie
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
