"""The update agent's event log: an append-only, hash-chained record of every state change, refusal and result.

The log is a file of lines, one entry per line, each the canonical JSON (:mod:`sdv.ota.bundle.canonical`) of an
:class:`EventEntry` followed by ``\\n`` (``ota/bundle-format.md`` section 9). This module is pure: it makes entries
and checks the bytes of log files; :mod:`sdv.ota.agent.event_store` appends them to the state directory.

Invariants:

* an entry's ``hash`` is the SHA-256 of the canonical encoding of the entry without its ``hash`` field, and its
  ``prev`` is the ``hash`` of the entry before it (64 zeros for entry 0); ``seq`` grows by exactly one. So a
  changed byte anywhere in an entry breaks its own hash, and removing, reordering or inserting an entry breaks
  the chain;
* only the bytes after the last ``\\n`` of the newest file may be a *torn* entry: a write that power loss cut
  short, which was never acknowledged (its fsync did not return). It is ignored (and dropped by the agent) when it
  can be the beginning of an entry; bytes that cannot (a complete entry followed by anything but ``\\n``) are
  damage like any other;
* the chain carries over rotation: the first entry of a new file follows the last entry of the previous one.
  The first kept entry of the oldest file is the anchor of what can be checked, unless it is entry 0.

The chain detects damage and edits that do not rewrite every later entry; whoever can write the state directory
can rewrite it all. The signed ECU report (:mod:`sdv.ota.agent.report`) carries the log head, so a server that kept a
report can tell whether the history up to that head was rewritten since.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from sdv.ota.agent.state import AgentState, BundleRecord
from sdv.ota.bundle.canonical import UtcTime, canonical_bytes, canonical_json, parse_canonical
from sdv.ota.errors import EventLogError

__all__ = [
    "EVENT_TYPE",
    "GENESIS",
    "MAX_REASON_CHARS",
    "BundleSummary",
    "EventEntry",
    "EventKind",
    "LogCheck",
    "LogHead",
    "Outcome",
    "check_log",
    "entry_hash",
    "make_entry",
    "outcome_of",
]

EVENT_TYPE: Final = "sdv-ota/event/v1"
"""The ``type`` of an event log entry."""

GENESIS: Final = "0" * 64
"""The ``prev`` of entry 0."""

MAX_REASON_CHARS: Final = 1024
"""Longer reasons are cut to this length (a refusal's message can quote untrusted input)."""

_HEX64 = r"^[0-9a-f]{64}$"
_STRICT = ConfigDict(extra="forbid", frozen=True)


class EventKind(StrEnum):
    """What an entry records."""

    START = "start"  # the agent opened its state directory (a boot); state: the persisted state it found
    STATE = "state"  # a state change; the changes into activated, rolled-back and failed are results
    REFUSED = "refused"  # a request refused without a state change; action: the request
    TRUST = "trust"  # a new trust root was accepted
    KEY = "key"  # the agent created its signing key
    CHECKPOINT = "checkpoint"  # first entry of a new file after rotation: restates the state and last result
    PRECONDITIONS = (
        "preconditions"  # a check of the vehicle's state: step, result, every signal's value and time
    )
    NOTICE = "notice"  # a user notice posted to the cockpit, or the result told to the user afterwards
    CONSENT = "consent"  # the driver's answer: who, when, accept / postpone / decline
    SOFTWARE = "software"  # the software identification published after a commit or a start


Outcome = Literal["committed", "rolled-back", "failed"]
"""How an update ended."""

_OUTCOMES: dict[AgentState, Outcome] = {
    AgentState.ACTIVATED: "committed",
    AgentState.ROLLED_BACK: "rolled-back",
    AgentState.FAILED: "failed",
}


class BundleSummary(BaseModel):
    """The bundle an entry concerns.

    Attributes:
        name: the manifest's name.
        version: its version.
        release_counter: its release counter.
        bundle_sha256: SHA-256 of the bundle file.
    """

    model_config = _STRICT

    name: str = Field(max_length=128)
    version: str = Field(max_length=256)
    release_counter: int = Field(ge=0)
    bundle_sha256: str = Field(pattern=_HEX64)

    @classmethod
    def of(cls, record: BundleRecord | None) -> BundleSummary | None:
        """The entry's view of a bundle record."""
        if record is None:
            return None
        return cls(
            name=record.name,
            version=record.version,
            release_counter=record.release_counter,
            bundle_sha256=record.bundle_sha256,
        )


class EventEntry(BaseModel):
    """One line of the event log.

    Attributes:
        type: ``"sdv-ota/event/v1"``.
        seq: the entry's number, from 0, one more than the entry before.
        prev: the ``hash`` of the entry before (:data:`GENESIS` for entry 0).
        time: when it was recorded (the ECU's clock).
        event: what it records.
        state: the agent's state after the event.
        previous: the state before a state change.
        action: the refused request.
        reason: why: the failure, the refusal's message, the rollback reason.
        bundle: the bundle concerned (the one being installed, or the installed one at commit).
        data: a few more facts (key id, trust root versions), names to strings or integers.
        outcome: for results and checkpoints: how the last update ended.
        hash: SHA-256 of the entry's canonical encoding without this field.
    """

    model_config = _STRICT

    type: Literal["sdv-ota/event/v1"]
    seq: int = Field(ge=0, le=2**63 - 1)
    prev: str = Field(pattern=_HEX64)
    time: UtcTime
    event: EventKind
    state: AgentState
    previous: AgentState | None = None
    action: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=MAX_REASON_CHARS)
    bundle: BundleSummary | None = None
    data: dict[str, str | int] = Field(default_factory=dict, max_length=16)
    outcome: Outcome | None = None
    hash: str = Field(pattern=_HEX64)

    def line(self) -> bytes:
        """The entry as written: canonical JSON and a newline."""
        return canonical_bytes(self) + b"\n"


def entry_hash(fields: dict[str, object]) -> str:
    """SHA-256 (hex) of the canonical encoding of an entry's fields without ``hash``."""
    body = {key: value for key, value in fields.items() if key != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def make_entry(
    *,
    seq: int,
    prev: str,
    time: datetime,
    event: EventKind,
    state: AgentState,
    previous: AgentState | None = None,
    action: str | None = None,
    reason: str | None = None,
    bundle: BundleSummary | None = None,
    data: dict[str, str | int] | None = None,
    outcome: Outcome | None = None,
) -> EventEntry:
    """A new entry, its hash computed (a reason longer than :data:`MAX_REASON_CHARS` is cut)."""
    if reason is not None and len(reason) > MAX_REASON_CHARS:
        reason = reason[: MAX_REASON_CHARS - 3] + "..."
    if outcome is None and event is EventKind.STATE:
        outcome = _OUTCOMES.get(state)
    draft = EventEntry.model_construct(
        type=EVENT_TYPE,
        seq=seq,
        prev=prev,
        time=time.replace(microsecond=0),
        event=event,
        state=state,
        previous=previous,
        action=action,
        reason=reason,
        bundle=bundle,
        data=dict(data or {}),
        outcome=outcome,
        hash=GENESIS,
    )
    fields = draft.model_dump(mode="json")
    return EventEntry.model_validate({**fields, "hash": entry_hash(fields)})


def outcome_of(entry: EventEntry) -> Outcome | None:
    """How the last update ended, if this entry records it (a result or a checkpoint)."""
    return entry.outcome if entry.event in (EventKind.STATE, EventKind.CHECKPOINT) else None


@dataclass(frozen=True)
class LogHead:
    """The newest entry of a log.

    Attributes:
        seq: its number.
        hash: its hash (what the next entry's ``prev`` must be).
    """

    seq: int
    hash: str


@dataclass(frozen=True)
class LogCheck:
    """What checking a log found.

    Attributes:
        entries: the entries, oldest first (across the files).
        head: the newest entry, or ``None`` for an empty log.
        torn: the length of a torn last entry that was ignored (0 if none).
        anchored: whether the first entry is entry 0 (otherwise older entries were rotated away and the first
            kept entry's ``prev`` is taken as given).
        last_result: the newest entry that records how an update ended.
    """

    entries: tuple[EventEntry, ...]
    head: LogHead | None
    torn: int
    anchored: bool
    last_result: EventEntry | None


def _torn(fragment: bytes) -> bool:
    """Whether bytes after the last newline can be the beginning of an entry cut short by power loss."""
    if b"\n" in fragment:  # pragma: no cover - the caller splits at the last newline
        return False
    try:  # latin-1 maps every byte to one character, so positions are byte offsets
        _, end = json.JSONDecoder().raw_decode(fragment.decode("latin-1"))
    except ValueError:
        return True  # incomplete (or zeros a file system left after the cut): never acknowledged
    return end == len(fragment)  # a whole entry that only lacks its newline; anything after it is damage


def _parse(line: bytes, where: str) -> EventEntry:
    try:
        entry = parse_canonical(EventEntry, line, f"{where}: event entry")
    except ValueError as error:
        raise EventLogError(str(error)) from error
    expected = entry_hash(entry.model_dump(mode="json"))
    if entry.hash != expected:
        raise EventLogError(
            f"{where}: the entry's hash is {entry.hash}, its content hashes to {expected}: the entry was altered"
        )
    return entry


def check_log(files: Sequence[tuple[str, bytes]]) -> LogCheck:
    """Check log files, oldest first, as one chain (the last file may end with a torn entry).

    Args:
        files: (name for messages, content) of each file.

    Returns:
        What the check found.

    Raises:
        EventLogError: at the first bad entry, naming the file, the line and what was expected.
    """
    entries: list[EventEntry] = []
    head: LogHead | None = None
    anchored = False
    torn = 0
    for index, (name, data) in enumerate(files):
        complete, _, fragment = data.rpartition(b"\n")
        lines = complete.split(b"\n") if complete else []
        if fragment:
            newest = index == len(files) - 1
            if not (newest and _torn(fragment)):
                raise EventLogError(
                    f"{name} line {len(lines) + 1}: {len(fragment)} bytes without a newline that cannot be an "
                    "entry cut short by power loss: the file was altered"
                )
            torn = len(fragment)
        for number, line in enumerate(lines, start=1):
            where = f"{name} line {number}"
            entry = _parse(line, where)
            if head is None:
                anchored = entry.seq == 0
                if anchored and entry.prev != GENESIS:
                    raise EventLogError(f"{where}: entry 0 has prev {entry.prev}, expected {GENESIS}")
            elif entry.seq != head.seq + 1:
                raise EventLogError(
                    f"{where}: entry number {entry.seq}, expected {head.seq + 1}: entries were removed or inserted"
                )
            elif entry.prev != head.hash:
                raise EventLogError(
                    f"{where}: prev is {entry.prev}, expected {head.hash} (the hash of entry {head.seq}): "
                    "the chain is broken"
                )
            head = LogHead(entry.seq, entry.hash)
            entries.append(entry)
    last_result = next((entry for entry in reversed(entries) if outcome_of(entry) is not None), None)
    return LogCheck(tuple(entries), head, torn, anchored, last_result)
