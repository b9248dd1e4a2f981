"""The update agent's state machine, modelled on AUTOSAR Adaptive Update and Configuration Management (UCM).

This module is pure: it holds the states, the table of allowed transitions and the persisted record, and
performs no I/O. :class:`~sdv.ota.agent.UpdateAgent` persists every record this module produces atomically
before it acts on it.

::

    Idle ──begin──▶ Transferring ──all bytes, SHA-256 ok──▶ Transferred ──install──▶ Processing
      ▲                 │ cancel / bad SHA-256                  │ cancel        │ verified and staged
      │                 ▼                                       ▼               ▼
      └───────────── Idle / Failed                            Idle            Ready ──activate──▶ Activating
                                                                                │ cancel            │ trial set
                                                                                ▼                   ▼
    Activated ◀──mark-good── Verifying (the new slot runs on trial) ◀────────────────────────── (booted)
                                 │ health check failed, boot attempts exhausted, rollback
                                 ▼
                            RollingBack ──▶ RolledBack

Invariants:

* a transition not in :data:`TRANSITIONS` raises :class:`~sdv.ota.errors.IllegalTransitionError`;
* :attr:`AgentRecord.installed` (the installed bundle and its release counter, which anti-rollback compares
  against) changes only on the transition to ``Activated``, i.e. at commit;
* ``Failed``, ``RolledBack``, ``Activated`` and ``Idle`` are at rest: a new transfer may begin from each.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sdv.ota.errors import IllegalTransitionError
from sdv.ota.manifest import Manifest

__all__ = [
    "AT_REST",
    "TRANSITIONS",
    "AgentRecord",
    "AgentState",
    "BundleRecord",
    "SlotName",
    "TransferRecord",
    "other_slot",
    "transition",
    "updated",
]

SlotName = Literal["A", "B"]
"""One side of the A/B pair (RAUC's boot names)."""


def other_slot(slot: SlotName) -> SlotName:
    """The other side of the A/B pair."""
    return "B" if slot == "A" else "A"


class AgentState(StrEnum):
    """The states of the update agent (AUTOSAR UCM's package and activation states, merged)."""

    IDLE = "idle"
    TRANSFERRING = "transferring"
    TRANSFERRED = "transferred"
    PROCESSING = "processing"
    READY = "ready"
    ACTIVATING = "activating"
    VERIFYING = "verifying"
    ACTIVATED = "activated"
    ROLLING_BACK = "rolling-back"
    ROLLED_BACK = "rolled-back"
    FAILED = "failed"


_S = AgentState
AT_REST: frozenset[AgentState] = frozenset({_S.IDLE, _S.ACTIVATED, _S.ROLLED_BACK, _S.FAILED})
"""States in which no update is under way: a new transfer may begin."""

TRANSITIONS: Mapping[AgentState, frozenset[AgentState]] = {
    _S.IDLE: frozenset({_S.TRANSFERRING}),
    # cancel, or a received bundle whose SHA-256 is not the transfer's id
    _S.TRANSFERRING: frozenset({_S.TRANSFERRED, _S.IDLE, _S.FAILED}),
    _S.TRANSFERRED: frozenset({_S.PROCESSING, _S.IDLE}),
    # staging interrupted by a restart goes back to Transferred: the inactive slot is rewritten from the start
    _S.PROCESSING: frozenset({_S.READY, _S.FAILED, _S.IDLE, _S.TRANSFERRED}),
    _S.READY: frozenset({_S.ACTIVATING, _S.IDLE}),
    _S.ACTIVATING: frozenset({_S.VERIFYING, _S.ROLLING_BACK}),
    _S.VERIFYING: frozenset({_S.ACTIVATED, _S.ROLLING_BACK}),
    _S.ROLLING_BACK: frozenset({_S.ROLLED_BACK}),
    _S.ACTIVATED: frozenset({_S.TRANSFERRING, _S.IDLE}),
    _S.ROLLED_BACK: frozenset({_S.TRANSFERRING, _S.IDLE}),
    _S.FAILED: frozenset({_S.TRANSFERRING, _S.IDLE}),
}
"""Allowed transitions: state → the states it may move to."""

_STRICT = ConfigDict(extra="forbid", frozen=True)
_SHA256 = r"^[0-9a-f]{64}$"


class TransferRecord(BaseModel):
    """A bundle being received.

    Attributes:
        bundle_sha256: SHA-256 of the whole bundle file, the transfer's id (a resumed upload must name it).
        size: the bundle's length in bytes.
        offset: bytes received and fsync-ed; never more than the partial file holds.
    """

    model_config = _STRICT

    bundle_sha256: str = Field(pattern=_SHA256)
    size: int = Field(ge=1)
    offset: int = Field(ge=0)


class BundleRecord(BaseModel):
    """What the agent knows of a verified bundle: enough to report it, without the bundle file.

    Attributes:
        name: the manifest's name.
        version: the manifest's version.
        release_counter: the manifest's release counter.
        bundle_sha256: SHA-256 of the bundle file.
        payloads: payload name → SHA-256, as the signed manifest declares them.
    """

    model_config = _STRICT

    name: str
    version: str
    release_counter: int = Field(ge=0)
    bundle_sha256: str = Field(pattern=_SHA256)
    payloads: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, manifest: Manifest, bundle_sha256: str) -> BundleRecord:
        """The record of a verified manifest."""
        return cls(
            name=manifest.name,
            version=manifest.version,
            release_counter=manifest.release_counter,
            bundle_sha256=bundle_sha256,
            payloads={payload.name: payload.sha256 for payload in manifest.payloads},
        )


class AgentRecord(BaseModel):
    """Everything the agent persists in ``state.json``, written atomically as one document.

    Attributes:
        type: the document type.
        state: the current state.
        sequence: grows by one with every persisted record, so watchers see each change.
        active_slot: the committed slot, which the ECU falls back to.
        trial_slot: the slot a new bundle is staged in or runs on trial in (set from Processing on).
        transfer: the bundle being received, from Transferring to Transferred.
        bundle: the bundle being installed, once its header verified.
        failure: why the last update failed or was rolled back.
        installed: the committed bundle (``None`` for the factory software); its release counter is the
            anti-rollback floor.
    """

    model_config = _STRICT

    type: Literal["sdv-ota/agent-state/v1"] = "sdv-ota/agent-state/v1"
    state: AgentState = AgentState.IDLE
    sequence: int = Field(default=0, ge=0)
    active_slot: SlotName = "A"
    trial_slot: SlotName | None = None
    transfer: TransferRecord | None = None
    bundle: BundleRecord | None = None
    failure: str | None = None
    installed: BundleRecord | None = None

    @property
    def installed_counter(self) -> int:
        """The release counter a new bundle must exceed (0 for the factory software)."""
        return self.installed.release_counter if self.installed is not None else 0


def transition(record: AgentRecord, target: AgentState, **changes: Any) -> AgentRecord:
    """The record after moving to ``target`` with ``changes`` applied to other fields.

    Raises:
        IllegalTransitionError: the table does not allow ``record.state`` → ``target``, or ``changes`` would
            alter the installed bundle on any transition but the commit (to ``Activated``).
    """
    if target not in TRANSITIONS[record.state]:
        raise IllegalTransitionError(f"the update agent cannot go from {record.state} to {target}")
    if "installed" in changes and target is not AgentState.ACTIVATED:
        raise IllegalTransitionError(f"the installed bundle changes only at commit, not on {target}")
    return updated(record, state=target, **changes)


def updated(record: AgentRecord, **changes: Any) -> AgentRecord:
    """A copy with ``changes`` and the next sequence number (a progress update within a state)."""
    values = record.model_dump()
    values.update(changes)
    values["sequence"] = record.sequence + 1
    return AgentRecord.model_validate(values)
