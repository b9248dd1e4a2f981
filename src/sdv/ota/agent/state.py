"""The update agent's state machine, modelled on AUTOSAR Adaptive Update and Configuration Management (UCM).

This module is pure: it holds the states, the table of allowed transitions and the persisted record, and
performs no I/O. :class:`~sdv.ota.agent.core.UpdateAgent` persists every record this module produces atomically
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

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sdv.ota.bundle.manifest import Manifest
from sdv.ota.errors import AgentStateError, BadSlotError, IllegalTransitionError

__all__ = [
    "AT_REST",
    "TRANSITIONS",
    "AgentRecord",
    "AgentState",
    "BundleRecord",
    "GroupRecord",
    "SlotName",
    "TransferRecord",
    "check_activation",
    "committed_groups",
    "other_slot",
    "transition",
    "trial_sides",
    "updated",
    "with_bad_trial_sides",
    "without_trial",
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
        counter_floors: slot group → lowest release counter it accepts once this bundle is committed.
        targets: payload name → the slot group of this ECU it installs into.
    """

    model_config = _STRICT

    name: str
    version: str
    release_counter: int = Field(ge=0)
    bundle_sha256: str = Field(pattern=_SHA256)
    payloads: dict[str, str] = Field(default_factory=dict)
    counter_floors: dict[str, int] = Field(default_factory=dict)
    targets: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, manifest: Manifest, bundle_sha256: str) -> BundleRecord:
        """The record of a verified manifest."""
        return cls(
            name=manifest.name,
            version=manifest.version,
            release_counter=manifest.release_counter,
            bundle_sha256=bundle_sha256,
            payloads={payload.name: payload.sha256 for payload in manifest.payloads},
            counter_floors=dict(manifest.counter_floors),
        )


class GroupRecord(BaseModel):
    """The persisted state of one slot group: its own A/B pair, trial, bad sides, installed bundle and counter.

    Attributes:
        active_slot: the committed side, which the group falls back to.
        trial_slot: the side a bundle is staged in or runs on trial in (``None`` when the group is not part of
            the update under way).
        bad_slots: sides that failed a trial and were not staged anew since; never activated.
        installed: the committed bundle whose payload the active side holds (``None`` for the factory software).
        counter: the release counter of the committed bundle (0 for the factory software): a new bundle for this
            group needs a higher one (or an equal one to re-install).
        floor: the lowest release counter this group accepts, raised by signed bundles (``counter_floors``).
    """

    model_config = _STRICT

    active_slot: SlotName = "A"
    trial_slot: SlotName | None = None
    bad_slots: tuple[SlotName, ...] = ()
    installed: BundleRecord | None = None
    counter: int = Field(default=0, ge=0)
    floor: int = Field(default=0, ge=0)

    def staged(self) -> GroupRecord:
        """After its trial side was written anew: that side is no longer bad."""
        return self.model_copy(
            update={"bad_slots": tuple(slot for slot in self.bad_slots if slot != self.trial_slot)}
        )


_LEGACY = "*"


class AgentRecord(BaseModel):
    """Everything the agent persists in ``state.json``, written atomically as one document.

    One update is under way at a time; it touches only the slot groups its bundle carries (those with a
    ``trial_slot``), each of which has its own A/B state.

    Attributes:
        type: the document type.
        state: the current state.
        sequence: grows by one with every persisted change, so watchers see each change.
        groups: slot group name → its state, the boot selector's group first.
        transfer: the bundle being received, from Transferring to Transferred.
        bundle: the bundle being installed, once its header verified.
        failure: why the last update failed or was rolled back.
        installed: the last committed bundle (``None`` for the factory software).
    """

    model_config = _STRICT

    type: Literal["sdv-ota/agent-state/v2"] = "sdv-ota/agent-state/v2"
    state: AgentState = AgentState.IDLE
    sequence: int = Field(default=0, ge=0)
    groups: dict[str, GroupRecord] = Field(default_factory=dict)
    transfer: TransferRecord | None = None
    bundle: BundleRecord | None = None
    failure: str | None = None
    installed: BundleRecord | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_v1(cls, data: Any) -> Any:
        """Read a version 1 record (one A/B state for the whole ECU) as one state every group starts from."""
        if not isinstance(data, dict) or data.get("type") != "sdv-ota/agent-state/v1":
            return data
        values = {
            key: data[key] for key in ("state", "sequence", "transfer", "bundle", "failure") if key in data
        }
        installed = data.get("installed")
        legacy = {
            "active_slot": data.get("active_slot", "A"),
            "trial_slot": data.get("trial_slot"),
            "installed": installed,
            "counter": installed.get("release_counter", 0) if isinstance(installed, dict) else 0,
        }
        return {**values, "installed": installed, "groups": {_LEGACY: legacy}}

    def with_groups(self, names: list[str]) -> AgentRecord:
        """The record holding exactly a state for each of ``names``, in that order (a group new to the
        configuration starts as factory software on side A; a version 1 record's state goes to every group).

        Groups the configuration no longer names are kept after these, so their counters are not forgotten, but
        never on trial: the agent has no slots for them.
        """
        legacy = self.groups.get(_LEGACY)
        groups = {name: self.groups.get(name) or legacy or GroupRecord() for name in names}
        groups.update(
            {
                name: group.model_copy(update={"trial_slot": None})
                for name, group in self.groups.items()
                if name not in groups and name != _LEGACY
            }
        )
        if list(groups.items()) == list(self.groups.items()):
            return self
        return self.model_copy(update={"groups": groups})

    @property
    def primary(self) -> GroupRecord:
        """The first group's state (the boot selector's group), or the factory state with no group."""
        return next(iter(self.groups.values()), GroupRecord())

    @property
    def active_slot(self) -> SlotName:
        """The committed side of the boot selector's group."""
        return self.primary.active_slot

    @property
    def trial_slot(self) -> SlotName | None:
        """The trial side of the boot selector's group, or of the first group on trial."""
        return next((group.trial_slot for group in self.groups.values() if group.trial_slot), None)

    @property
    def trial_groups(self) -> list[str]:
        """The groups the update under way carries."""
        return [name for name, group in self.groups.items() if group.trial_slot is not None]

    @property
    def installed_counter(self) -> int:
        """The highest committed release counter of any group (0 for the factory software)."""
        return max((group.counter for group in self.groups.values()), default=0)

    def with_group(self, name: str, **changes: Any) -> dict[str, GroupRecord]:
        """The groups with ``changes`` applied to ``name``."""
        return {**self.groups, name: self.groups[name].model_copy(update=changes)}


def transition(record: AgentRecord, target: AgentState, **changes: Any) -> AgentRecord:
    """The record after moving to ``target`` with ``changes`` applied to other fields.

    Raises:
        IllegalTransitionError: the table does not allow ``record.state`` → ``target``, or ``changes`` would
            alter the installed bundle on any transition but the commit (to ``Activated``).
    """
    if target not in TRANSITIONS[record.state]:
        raise IllegalTransitionError(f"the update agent cannot go from {record.state} to {target}")
    if target is not AgentState.ACTIVATED:
        if "installed" in changes:
            raise IllegalTransitionError(f"the installed bundle changes only at commit, not on {target}")
        _check_commit_fields(record, changes.get("groups"), target)
    return updated(record, state=target, **changes)


def _check_commit_fields(
    record: AgentRecord, groups: Mapping[str, GroupRecord] | None, target: AgentState
) -> None:
    for name, group in (groups or {}).items():
        before = record.groups.get(name)
        if before is not None and (before.installed, before.counter, before.floor) != (
            group.installed,
            group.counter,
            group.floor,
        ):
            raise IllegalTransitionError(
                f"slot group {name}: the installed bundle and its counters change only at commit, not on {target}"
            )


def trial_sides(record: AgentRecord) -> dict[str, SlotName]:
    """The groups the update under way carries, and their sides on trial."""
    return {name: group.trial_slot for name, group in record.groups.items() if group.trial_slot}


def without_trial(record: AgentRecord) -> dict[str, GroupRecord]:
    """The groups with no side on trial (the update under way abandoned or finished)."""
    return {name: group.model_copy(update={"trial_slot": None}) for name, group in record.groups.items()}


def with_bad_trial_sides(record: AgentRecord) -> dict[str, GroupRecord]:
    """The groups with their trial sides marked bad (a failed trial)."""
    return {
        name: group.model_copy(update={"bad_slots": tuple(sorted({*group.bad_slots, group.trial_slot}))})
        if group.trial_slot
        else group
        for name, group in record.groups.items()
    }


def committed_groups(record: AgentRecord) -> dict[str, GroupRecord]:
    """The groups after the bundle on trial is committed: each trial side active (and no longer bad), the bundle
    its installed one, its release counter the group's counter; every floor the bundle names raised.

    Raises:
        AgentStateError: no bundle is on trial.
    """
    bundle = record.bundle
    if bundle is None:
        raise AgentStateError("no bundle is on trial")
    groups = {}
    for name, group in record.groups.items():
        changes: dict[str, Any] = {
            "trial_slot": None,
            "floor": max(group.floor, bundle.counter_floors.get(name, 0)),
        }
        if group.trial_slot is not None:
            changes |= {
                "active_slot": group.trial_slot,
                "installed": bundle,
                "counter": bundle.release_counter,
                "bad_slots": tuple(slot for slot in group.bad_slots if slot != group.trial_slot),
            }
        groups[name] = group.model_copy(update=changes)
    return groups


def check_activation(record: AgentRecord) -> None:
    """Refuse to start a trial that would boot a side marked bad.

    Raises:
        BadSlotError: a group's trial side failed a trial and was not staged anew since.
    """
    for name, group in record.groups.items():
        if group.trial_slot is not None and group.trial_slot in group.bad_slots:
            raise BadSlotError(
                f"slot group {name}: side {group.trial_slot} failed its trial and was not installed anew; "
                "refusing to activate it (install a bundle for this group first)"
            )


def updated(record: AgentRecord, **changes: Any) -> AgentRecord:
    """A copy with ``changes`` and the next sequence number (a progress update within a state)."""
    values = record.model_dump()
    values.update(changes)
    values["sequence"] = record.sequence + 1
    return AgentRecord.model_validate(values)
