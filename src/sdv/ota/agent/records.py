"""The records the update agent keeps and signs itself: its event log, its identity key, its version reports, and
trust roots received over the air.

:class:`AgentRecords` is opened by :class:`~sdv.ota.agent.core.UpdateAgent` with its state directory and hooked in
at three points: :meth:`AgentRecords.started` once the record is loaded, :meth:`AgentRecords.state_changed`
before every state change is persisted, and :func:`journaled` on each public request, which records a request
refused without a state change.

Invariants:

* the identity key is created once, atomically and without ever replacing an existing key file (mode 0600),
  at the agent's first start or by ``sdv ota report key``;
* a report is signed only for a well-formed nonce, from what the agent recorded (its record and event log),
  never from input of the caller;
* a trust root received over the air replaces the trust file only if it is the next version, authorized by a
  threshold of the current root's and of its own root keys, and not expired
  (:func:`~sdv.ota.bundle.trust.verify_rotation`, as ``sdv ota trust update``); the file is replaced atomically and the
  change logged, a refusal leaves it untouched and is logged too.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from sdv.errors import SdvError
from sdv.ota.agent.config import AgentConfig
from sdv.ota.agent.event_log import BundleSummary, EventEntry, EventKind
from sdv.ota.agent.event_store import EventJournal
from sdv.ota.agent.report import (
    REPORT_TYPE,
    EcuReport,
    ReportedComponent,
    ReportedGroup,
    ReportedLogHead,
    ReportedResult,
    SignedEcuReport,
    check_nonce,
    sign_report,
)
from sdv.ota.agent.software_id import rxswin
from sdv.ota.agent.state import AgentRecord, AgentState
from sdv.ota.agent.store import AgentStatus
from sdv.ota.bundle.canonical import parse_time
from sdv.ota.bundle.keys import PrivateKey, generate_private_key
from sdv.ota.bundle.store import (
    fsync_directory,
    load_private_key,
    load_time_state,
    load_trust,
    save_trust,
)
from sdv.ota.bundle.trust import TrustRoot, check_trust_root_fresh, parse_signed_trust_root, verify_rotation
from sdv.ota.bundle.trusted_time import trusted_now
from sdv.ota.errors import OtaError, TrustRootFormatError

__all__ = ["AgentRecords", "TrustUpdate", "ecu_key_path", "journaled", "load_or_create_ecu_key"]

_logger = logging.getLogger(__name__)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def ecu_key_path(config: AgentConfig) -> Path:
    """Where the agent's signing key lives (``ecu_key``, default ``STATE_DIR/ecu-key.pem``)."""
    return config.ecu_key or config.state_dir / "ecu-key.pem"


def load_or_create_ecu_key(path: Path) -> tuple[PrivateKey, bool]:
    """Load the agent's key, creating it first if there is none.

    The new key is written to a temporary file (mode 0600, fsync) and linked to ``path``, which fails if another
    process created the key meanwhile: an existing key is never replaced.

    Returns:
        The key, and whether it was created now.

    Raises:
        OtaError: the key file cannot be read or written.
    """
    if path.exists():
        return load_private_key(path), False
    key = generate_private_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.write(descriptor, key.to_pem())
        os.fsync(descriptor)
        os.close(descriptor)
        os.link(temporary, path)
    except FileExistsError:
        return load_private_key(path), False
    except OSError as error:
        raise OtaError(f"{path}: cannot create the ECU key: {error.strerror}") from error
    finally:
        Path(temporary).unlink(missing_ok=True)
    fsync_directory(path.parent)
    _logger.info("created the ECU key %s in %s", key.keyid[:16], path)
    return key, True


class TrustUpdate:
    """A trust root accepted over the air.

    Attributes:
        previous: the version replaced.
        root: the new trusted root.
    """

    def __init__(self, previous: int, root: TrustRoot) -> None:
        self.previous = previous
        self.root = root


class AgentRecords:
    """The event log, the identity key, reports and trust updates of one agent's state directory.

    Args:
        config: the agent configuration.
        clock: the clock for entries, reports and expiry checks.
    """

    def __init__(self, config: AgentConfig, clock: Callable[[], datetime]) -> None:
        self.config = config
        self._clock = clock
        self.journal = EventJournal(config.state_dir, config.event_log, clock)
        self._key: PrivateKey | None = None
        self._trust_lock = threading.Lock()

    @property
    def key(self) -> PrivateKey:
        """The agent's signing key (after :meth:`started`)."""
        if self._key is None:
            raise RuntimeError("the agent's records are not started")
        return self._key

    # -- hooks of the agent --------------------------------------------------------------------------------------

    def started(self, record: AgentRecord) -> None:
        """Record a start of the agent (a boot) with the persisted state it found; create its key if needed."""
        key, created = load_or_create_ecu_key(ecu_key_path(self.config))
        self._key = key
        if created:
            self.journal.append(EventKind.KEY, record.state, data={"keyid": key.keyid})
        notes = []
        if self.journal.dropped_torn:
            notes.append(
                f"dropped a torn last entry of {self.journal.dropped_torn} bytes (power was lost while it was "
                "written; it was never acknowledged)"
            )
        if self.journal.damage:
            notes.append(f"the event log is damaged: {self.journal.damage}")
        self.journal.append(
            EventKind.START,
            record.state,
            reason="; ".join(notes) or None,
            bundle=BundleSummary.of(record.bundle or record.installed),
            data={"active_slot": record.active_slot, "record_sequence": record.sequence},
        )

    def state_changed(self, before: AgentRecord, after: AgentRecord) -> None:
        """Record a state change; called before ``after`` is persisted."""
        transfer = after.transfer or before.transfer
        data: dict[str, str | int] = {} if transfer is None else {"transfer_sha256": transfer.bundle_sha256}
        bundle = after.installed if after.state is AgentState.ACTIVATED else after.bundle or before.bundle
        self.journal.append(
            EventKind.STATE,
            after.state,
            previous=before.state,
            reason=after.failure,
            bundle=BundleSummary.of(bundle),
            data=data,
        )

    def refused(self, action: str, error: Exception, state: AgentState) -> None:
        """Record a request refused without a state change (a failure to record it is logged, not raised)."""
        try:
            self.journal.append(
                EventKind.REFUSED, state, action=action, reason=str(error) or type(error).__name__
            )
        except (OSError, OtaError) as failure:
            _logger.warning("cannot record the refused %s in the event log: %s", action, failure)

    # -- reports -------------------------------------------------------------------------------------------------

    def _trusted_now(self) -> datetime:
        return trusted_now(self._clock(), load_time_state(self.config.state_dir / "time.json"))

    def report(self, status: AgentStatus, nonce: str) -> SignedEcuReport:
        """Sign the ECU version report of ``status`` for the server's ``nonce``.

        Raises:
            NonceFormatError: the nonce is missing, too long or not lowercase hex.
            OtaError: the trust file or the time state cannot be read.
        """
        try:
            check_nonce(nonce)
        except SdvError as error:
            self.refused("report", error, status.record.state)
            raise
        record = status.record
        installed = record.installed
        groups = [
            ReportedGroup(
                name=name,
                active_slot=group.active_slot,
                installed=BundleSummary.of(group.installed),
                release_counter=group.counter,
                counter_floor=group.floor,
                bad_slots=list(group.bad_slots),
            )
            for name, group in record.groups.items()
        ]
        components = [
            ReportedComponent(
                group=name,
                name=payload,
                sha256=sha256,
                bundle=group.installed.name,
                version=group.installed.version,
                release_counter=group.counter,
            )
            for name, group in record.groups.items()
            if group.installed is not None
            for payload, sha256 in sorted(group.installed.payloads.items())
            if group.installed.targets.get(payload, name) == name
        ]
        head = self.journal.head
        report = EcuReport(
            type=REPORT_TYPE,
            ecu_id=self.config.ecu_id or self.config.hardware_id,
            hardware_id=self.config.hardware_id,
            nonce=nonce,
            time=self._trusted_now().replace(microsecond=0),
            state=record.state,
            active_slot=record.active_slot,
            installed=BundleSummary.of(installed),
            groups=groups,
            components=components,
            last_result=_result(self.journal.last_result),
            trust_root_version=load_trust(self.config.trust, self.config.limits).signed.version,
            log_head=None if head is None else ReportedLogHead(seq=head.seq, hash=head.hash),
            software_id=rxswin(record, self.config),
        )
        return sign_report(report, self.key)

    # -- trust over the air --------------------------------------------------------------------------------------

    def update_trust(self, roots: Sequence[bytes], state: AgentState) -> TrustUpdate:
        """Accept the next trust root versions, oldest first, as ``sdv ota trust update`` does locally.

        Raises:
            TrustRootFormatError: no root given, or one that does not parse.
            RollbackError, RotationError, BadSignatureError, UnknownKeyError, ThresholdNotMetError: a version the
                current root does not authorize (the trust file is left untouched).
            ExpiredError: the newest root is expired.
        """
        with self._trust_lock:
            try:
                return self._update_trust(roots, state)
            except SdvError as error:
                self.refused("update trust", error, state)
                raise

    def _update_trust(self, roots: Sequence[bytes], state: AgentState) -> TrustUpdate:
        if not roots:
            raise TrustRootFormatError("the trust update carries no trust root")
        limits = self.config.limits
        current = load_trust(self.config.trust, limits)
        accepted = current
        for number, data in enumerate(roots, start=1):
            source = f"trust update root {number} of {len(roots)}"
            candidate = parse_signed_trust_root(data, source, limits)
            verify_rotation(accepted.signed, candidate, source)
            accepted = candidate
        check_trust_root_fresh(accepted.signed, self._trusted_now())
        previous, new = current.signed.version, accepted.signed.version
        self.journal.append(
            EventKind.TRUST, state, data={"from_version": previous, "to_version": new}
        )  # before the change is persisted, as every entry
        save_trust(self.config.trust, accepted)
        _logger.info("trust root updated over the air from version %d to %d", previous, new)
        return TrustUpdate(previous, accepted.signed)


def _result(entry: EventEntry | None) -> ReportedResult | None:
    if entry is None or entry.outcome is None:
        return None
    origin_seq, origin_time = entry.seq, entry.time
    if entry.event is EventKind.CHECKPOINT:  # carried over a rotation: the result's own entry and time
        seq, time = entry.data.get("result_seq"), entry.data.get("result_time")
        if isinstance(seq, int) and isinstance(time, str):
            origin_seq, origin_time = seq, parse_time(time)
    return ReportedResult(
        outcome=entry.outcome, bundle=entry.bundle, reason=entry.reason, time=origin_time, event=origin_seq
    )


class _Journaled(Protocol):
    records: AgentRecords

    @property
    def record(self) -> AgentRecord: ...


_A = TypeVar("_A", bound=_Journaled)


def journaled(
    action: str,
) -> Callable[[Callable[Concatenate[_A, _P], _R]], Callable[Concatenate[_A, _P], _R]]:
    """Record a refusal of the agent request ``action`` in the event log.

    A request that raises a project error without recording anything in the log itself (no state change) is
    logged as refused, with the error's message, before the error reaches the caller.
    """

    def decorate(method: Callable[Concatenate[_A, _P], _R]) -> Callable[Concatenate[_A, _P], _R]:
        @functools.wraps(method)
        def run(agent: _A, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            before = agent.records.journal.appended_here()
            try:
                return method(agent, *args, **kwargs)
            except SdvError as error:
                if agent.records.journal.appended_here() == before:
                    agent.records.refused(action, error, agent.record.state)
                raise

        return run

    return decorate
