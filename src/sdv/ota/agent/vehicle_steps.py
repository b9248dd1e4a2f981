"""The update agent's vehicle-aware steps, called from the install and activation steps: the gate of
preconditions and energy before install and activation, the re-check while on trial, notice and consent, and the
result told to the user. Every check, notice and answer is recorded in the event log."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

from pydantic import ValidationError

from sdv.errors import SdvError, VerificationError
from sdv.ota.agent.base import AgentBase
from sdv.ota.agent.consent import ConsentChannel, Decision, PostedNotice, UpdateResult
from sdv.ota.agent.event_log import BundleSummary, EventKind
from sdv.ota.agent.preconditions import GateCheck, VehicleGate, VehicleView
from sdv.ota.agent.software_id import SoftwarePublisher, rxswin, software_attributes
from sdv.ota.agent.state import AgentState, without_trial
from sdv.ota.agent.store import AgentStatus
from sdv.ota.bundle.format import read_header
from sdv.ota.bundle.manifest import Manifest
from sdv.ota.bundle.store import read_limited, write_atomically
from sdv.ota.errors import (
    ConsentError,
    InsufficientEnergyError,
    OperationCancelledError,
    OtaError,
    PreconditionsUnmetError,
)
from sdv.types.datatypes import Value

__all__ = ["VehicleSteps"]

_logger = logging.getLogger(__name__)
_S = AgentState
_TERMS_FILE = "vehicle.json"  # the staged bundle's verified manifest, for the checks of its activation
_TERMS_LIMIT = 1024 * 1024
_READINGS_CHARS = 4000


class VehicleSteps(AgentBase):
    """The gate, consent and result of an update, for the install and activation steps."""

    gate: VehicleGate
    consent: ConsentChannel | None
    last_check: GateCheck | None
    notice_id: str | None
    publisher: SoftwarePublisher | None
    consent_state: str

    def status(self) -> AgentStatus:
        """The agent's status with what it knows of the vehicle (:class:`VehicleView`)."""
        view = VehicleView(
            self.last_check, self.notice_id, self.consent_state, rxswin(self._record, self.config)
        )
        return dataclasses.replace(super().status(), vehicle=view)

    def publish_software(self, *, record: bool = False) -> dict[str, Value]:
        """Publish the software identification of the committed software (at start, after a commit or a
        rollback); with ``record``, the event log keeps it too. A publisher that fails is logged, not raised: the
        update's outcome stands, and the next start publishes again."""
        values = software_attributes(self._record, self.config)
        if record:
            branch = self.config.vehicle.software.branch
            listed = values[f"{branch}.Components"]
            self.records.journal.append(
                EventKind.SOFTWARE,
                self._record.state,
                reason="; ".join(map(str, listed)) if isinstance(listed, tuple) else None,
                bundle=BundleSummary.of(self._record.installed),
                data={"rxswin": str(values[f"{branch}.Rxswin"]), "version": str(values[f"{branch}.Version"])},
            )
        if self.publisher is not None:
            try:
                self.publisher.publish(values)
            except (SdvError, OSError) as error:
                _logger.warning("cannot publish the software identification: %s", error)
        return values

    # -- hooks ---------------------------------------------------------------------------------------------------

    def _vehicle_before_install(self) -> None:
        """Before staging: the preconditions and energy hold (waiting up to ``wait_s``) and, where the bundle or
        the policy asks, the driver accepted. A declined update is discarded (nothing is installed)."""
        with self._mutex:
            self._require("install", _S.TRANSFERRED)
            self._cancel.clear()  # only a cancel from now on stops this install's waits
            transfer = self._record.transfer
            source = f"bundle {(transfer.bundle_sha256 if transfer else '')[:16]}"
            try:
                with self.incoming.open("rb") as handle:
                    header = read_header(handle, source, self.config.limits)
                manifest, _ = self._verifier().verify_header(header, source)  # only signed terms count
            except (OSError, VerificationError):
                return  # the install's own verification refuses it, into the state it documents
        terms = self.state_dir / _TERMS_FILE
        if manifest.vehicle is None:
            terms.unlink(missing_ok=True)
        else:
            write_atomically(terms, manifest.model_dump_json().encode())
        self._pass_gate("install", manifest)
        self._ask_consent(manifest)

    def _vehicle_before_activate(self) -> None:
        """Before the trial: the preconditions and energy hold (waiting up to ``wait_s``)."""
        self._pass_gate("activate", self._staged_manifest())

    def _vehicle_broken(self) -> str | None:
        """While on trial: why the vehicle left the state the update needs (None while it holds)."""
        manifest = self._staged_manifest()
        if not self.gate.needed(manifest):
            return None
        check = self.gate.check("activation", manifest)
        self._record_check(check)
        return None if check.met else f"the vehicle left the update's preconditions: {check.summary()}"

    def _vehicle_result(self, success: bool, reason: str | None) -> None:
        """Publish the software identification and tell the cockpit how the update ended (best effort: the
        update's outcome stands either way)."""
        self.publish_software(record=success)
        notice_id, self.notice_id = self.notice_id, None
        if self.consent is None or notice_id is None:
            return
        manifest = self._staged_manifest()
        terms = None if manifest is None else manifest.vehicle
        texts = None if terms is None or terms.notice is None else terms.notice.texts
        first = None if not texts else next(iter(texts.values()))
        told = first.after_success if success and first else first.after_failure if first else None
        message = told or ("the update is installed" if success else f"the update failed: {reason}")
        self._tell(notice_id, UpdateResult(success, message, self._clock()))
        self.records.journal.append(
            EventKind.NOTICE,
            self._record.state,
            action="result",
            reason=message,
            data={"notice": notice_id, "success": int(success)},
        )

    def _tell(self, notice_id: str, result: UpdateResult) -> None:
        """Tell the cockpit (best effort: a cockpit that cannot be reached is logged)."""
        if self.consent is None:
            return
        try:
            self.consent.tell(notice_id, result)
        except (OSError, OtaError) as error:
            _logger.warning("cannot tell the cockpit about notice %s: %s", notice_id, error)

    # -- the gate ------------------------------------------------------------------------------------------------

    def _staged_manifest(self) -> Manifest | None:
        path = self.state_dir / _TERMS_FILE
        if not path.exists():
            return None
        try:
            return Manifest.model_validate_json(read_limited(path, _TERMS_LIMIT, "staged manifest"))
        except ValidationError as error:
            raise OtaError(f"{path}: malformed staged manifest: {error}") from error

    def _pass_gate(self, step: str, manifest: Manifest | None) -> None:
        if not self.gate.needed(manifest):
            return
        if step == "activate":
            self._cancel.clear()
        check = self.gate.wait(step, manifest, self._cancel, self._record_check)
        if check.met:
            return
        if self._cancel.is_set():
            raise OperationCancelledError(f"cancelled while waiting to {step}: {check.summary()}")
        if check.energy is not None and not check.energy.met and all(result.met for result in check.results):
            raise InsufficientEnergyError(f"cannot {step}: {check.summary()}")
        raise PreconditionsUnmetError(f"cannot {step}: {check.summary()}")

    def _record_check(self, check: GateCheck) -> None:
        self.last_check = check
        readings = "; ".join(
            f"{reading.path}={reading.value!r} {reading.status} at {reading.timestamp}"
            for reading in check.readings
        )
        data: dict[str, str | int] = {
            "step": check.step,
            "met": int(check.met),
            "signals": readings[:_READINGS_CHARS],
        }
        if check.energy is not None:
            data["energy_needed_wh"] = round(check.energy.needed_wh)
            if check.energy.available_wh is not None:
                data["energy_available_wh"] = round(check.energy.available_wh)
        self.records.journal.append(
            EventKind.PRECONDITIONS,
            self._record.state,
            reason=check.summary(),
            bundle=BundleSummary.of(self._record.bundle),
            data=data,
        )
        self._notify()

    # -- consent -------------------------------------------------------------------------------------------------

    def _consent_cancelled(self) -> None:
        """The install was cancelled while the driver had not answered: the cockpit is told that the update will
        not run (best effort), and the event log keeps the cancellation."""
        notice_id, self.notice_id = self.notice_id, None
        self.consent_state = "cancelled"
        message = "the update was cancelled before the driver answered; nothing was installed"
        if notice_id is not None:
            self._tell(notice_id, UpdateResult(False, message, self._clock()))
        self.records.journal.append(
            EventKind.CONSENT,
            self._record.state,
            action="cancelled",
            reason=message,
            data={"notice": notice_id or "", "answered": 0},
        )
        self._notify()
        raise OperationCancelledError(
            f"cancelled while waiting for the driver's consent (notice {notice_id})"
        )

    def _ask_consent(self, manifest: Manifest) -> None:
        terms = manifest.vehicle
        notice = None if terms is None else terms.notice
        policy = self.config.vehicle.consent
        required = policy.required or (notice is not None and notice.consent_required)
        if notice is None:
            if required:
                raise ConsentError(
                    "the policy requires consent, and the bundle carries no notice to ask it with"
                )
            return
        if self.consent is None:
            if required:
                raise ConsentError("the bundle needs the driver's consent, and no cockpit is configured")
            return
        now = self._clock()
        posted = PostedNotice(
            id="",
            bundle=manifest.name,
            version=manifest.version,
            notice=notice,
            consent_required=required,
            posted=now,
            deadline=now + timedelta(seconds=policy.timeout_s),
        )
        self.notice_id = self.consent.post(posted)
        self.records.journal.append(
            EventKind.NOTICE,
            self._record.state,
            action="posted",
            data={
                "notice": self.notice_id,
                "consent_required": int(required),
                "languages": " ".join(notice.texts),
            },
        )
        if not required:
            return
        self.consent_state = "waiting for the driver"
        self._notify()
        answer = self.consent.wait(self.notice_id, policy.timeout_s, self._cancel)
        if answer is None and self._cancel.is_set():
            self._consent_cancelled()
        self.consent_state = "no answer" if answer is None else f"{answer.decision.value} by {answer.by}"
        self.records.journal.append(
            EventKind.CONSENT,
            self._record.state,
            action=None if answer is None else answer.decision.value,
            reason=None if answer is None else f"{answer.by} at {answer.time.isoformat()}",
            data={"notice": self.notice_id, "answered": int(answer is not None)},
        )
        if answer is not None and answer.decision is Decision.ACCEPT:
            return
        if answer is not None and answer.decision is Decision.DECLINE:
            with self._mutex:  # declined: nothing of the bundle stays
                self.transfers.discard()
                self._go(
                    _S.IDLE, transfer=None, bundle=None, groups=without_trial(self._record), failure=None
                )
            raise ConsentError(f"the driver declined the update ({answer.by})")
        what = "postponed the update" if answer is not None else "gave no answer in time"
        raise ConsentError(f"the driver {what}; the bundle is kept for a later install")
