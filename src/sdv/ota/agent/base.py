"""The update agent's shared core: the state directory's files, persisting the record, the status and its
listeners, and the verifier for the current trusted state. :class:`~sdv.ota.agent.core.UpdateAgent` combines it
with the transfer, install and activation steps (one module each)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from sdv.ota.agent.config import AgentConfig
from sdv.ota.agent.groups import SlotGroups
from sdv.ota.agent.records import AgentRecords
from sdv.ota.agent.slots import SlotGroup
from sdv.ota.agent.state import (
    AgentRecord,
    AgentState,
    transition,
)
from sdv.ota.agent.store import (
    AgentObserver,
    AgentStatus,
    GroupBoot,
    write_record,
)
from sdv.ota.agent.transfer import TransferStore
from sdv.ota.bundle.manifest import Payload
from sdv.ota.bundle.rollback import ComponentCounters
from sdv.ota.bundle.store import (
    load_time_state,
    load_trust,
)
from sdv.ota.bundle.trusted_time import trusted_now
from sdv.ota.bundle.verifier import BundleVerifier
from sdv.ota.errors import (
    AgentStateError,
)

__all__ = ["AgentBase"]

_logger = logging.getLogger(__name__)
_S = AgentState


class AgentBase:
    """What every step of the update agent shares (set up by :class:`~sdv.ota.agent.core.UpdateAgent`)."""

    config: AgentConfig
    state_dir: Path
    groups: SlotGroups
    records: AgentRecords
    transfers: TransferStore
    _lock_handle: BinaryIO
    _clock: Callable[[], datetime]
    _mutex: threading.RLock
    _listeners: list[Callable[[AgentStatus], None]]
    _uploading: bool
    _cancel: threading.Event
    _staged_bytes: int
    _staging_total: int
    _observer: AgentObserver
    _record: AgentRecord
    _boot_info: tuple[GroupBoot, ...]

    # -- files, lock, persistence -------------------------------------------------------------------------------

    @property
    def incoming(self) -> Path:
        """The partially received bundle."""
        return self.transfers.path

    @property
    def time_state_path(self) -> Path:
        """The trusted time floor."""
        return self.state_dir / "time.json"

    def _persist(self, record: AgentRecord) -> None:
        changed = record.state is not self._record.state
        if changed:  # the event log entry is on disk before the change it records
            self.records.state_changed(self._record, record)
        write_record(self.state_dir, record)
        self._record = record
        if changed:
            _logger.info("update agent: %s", record.state)
            self._observer.persisted(record.state)
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

    # -- verification ---------------------------------------------------------------------------------------------

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
