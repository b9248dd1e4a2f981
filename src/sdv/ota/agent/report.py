"""ECU version reports: the update agent's signed statement of what it runs, answering a server's nonce.

The agent, and only the agent, makes the report, from what it recorded itself: its state, the installed bundle
and its components with their release counters, how the last update ended, the trust root version and the head
of its event log. It signs the report with its own key, which the server trusts from the ECU's provisioning
(``sdv ota report key``). This is Uptane's ECU version report (Uptane Standard, "ECU version report"): the
signature shows which ECU speaks, the nonce that the report answers this request and is no replay.

Invariants:

* a report is canonical JSON (:mod:`sdv.ota.bundle.canonical`) and its signature covers ``signing_input`` with the
  kind ``sdv-ota/ecu-report/v1``, so it can never pass for a manifest or trust root signature, nor they for it;
* a nonce is 32 to 128 lowercase hex digits; the agent refuses to sign for any other (:class:`NonceFormatError`);
* :func:`verify_report` checks in a fixed order: the signature by the expected ECU key, then the nonce
  (compared in constant time), then an optionally expected release counter.

This module performs no I/O.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from sdv.ota.agent.event_log import BundleSummary, Outcome
from sdv.ota.agent.state import AgentState, SlotName
from sdv.ota.bundle.canonical import UtcTime, canonical_bytes, parse_canonical, signing_input
from sdv.ota.bundle.config import DEFAULT_LIMITS, OtaLimits
from sdv.ota.bundle.keys import PrivateKey, PublicKey, Signature
from sdv.ota.bundle.manifest import HardwareId, Name
from sdv.ota.bundle.trust import check_threshold, tally_signatures
from sdv.ota.errors import (
    BundleFormatError,
    NonceFormatError,
    NonceMismatchError,
    RollbackError,
    SizeLimitError,
)

__all__ = [
    "NONCE_PATTERN",
    "REPORT_TYPE",
    "EcuReport",
    "ReportedComponent",
    "ReportedGroup",
    "ReportedLogHead",
    "ReportedResult",
    "SignedEcuReport",
    "check_nonce",
    "new_nonce",
    "parse_signed_report",
    "sign_report",
    "verify_report",
]

REPORT_TYPE: Final = "sdv-ota/ecu-report/v1"
"""The ``type`` of an ECU version report, also the label of its signature."""

NONCE_PATTERN = r"^[0-9a-f]{32,128}$"
"""A nonce: 16 to 64 random bytes in lowercase hex."""

_NONCE_RE = re.compile(NONCE_PATTERN)
_NONCE_BYTES = 16
_HEX64 = r"^[0-9a-f]{64}$"
_STRICT = ConfigDict(extra="forbid", frozen=True)


class ReportedComponent(BaseModel):
    """One installed component (a payload of a slot group's installed bundle).

    Attributes:
        group: the slot group it is installed in.
        name: the payload's name.
        sha256: its SHA-256 as the signed manifest declared it.
        bundle: the bundle it came with.
        version: that bundle's version.
        release_counter: that bundle's release counter (the group's anti-rollback counter).
    """

    model_config = _STRICT

    group: Name
    name: Name
    sha256: str = Field(pattern=_HEX64)
    bundle: str = Field(max_length=128)
    version: str = Field(max_length=256)
    release_counter: int = Field(ge=0)


class ReportedGroup(BaseModel):
    """One slot group as the agent committed it.

    Attributes:
        name: the group.
        active_slot: its committed side.
        installed: the bundle it runs; ``None`` for the factory software.
        release_counter: its anti-rollback counter.
        counter_floor: the lowest release counter it accepts.
        bad_slots: sides that failed a trial and were not installed anew.
    """

    model_config = _STRICT

    name: Name
    active_slot: SlotName
    installed: BundleSummary | None
    release_counter: int = Field(ge=0)
    counter_floor: int = Field(ge=0)
    bad_slots: list[SlotName] = Field(max_length=2)


class ReportedResult(BaseModel):
    """How the last update ended, from the event log.

    Attributes:
        outcome: committed, rolled back or failed.
        bundle: the bundle concerned, if known.
        reason: why it was rolled back or failed.
        time: when the agent recorded it.
        event: the number of the event log entry that recorded it.
    """

    model_config = _STRICT

    outcome: Outcome
    bundle: BundleSummary | None
    reason: str | None = Field(max_length=1024)
    time: UtcTime
    event: int = Field(ge=0)


class ReportedLogHead(BaseModel):
    """The newest entry of the agent's event log when it signed the report.

    Attributes:
        seq: its number.
        hash: its hash.
    """

    model_config = _STRICT

    seq: int = Field(ge=0)
    hash: str = Field(pattern=_HEX64)


class EcuReport(BaseModel):
    """What one ECU runs, as its update agent recorded it.

    Attributes:
        type: the document type, ``"sdv-ota/ecu-report/v1"``.
        ecu_id: the ECU's identity (serial number).
        hardware_id: the ECU's hardware id.
        nonce: the nonce of the server's request.
        time: when the report was made (the ECU's trusted time).
        state: the update agent's state.
        active_slot: the committed side of the boot selector's group.
        installed: the last committed bundle; ``None`` for the factory software.
        groups: every slot group, the boot selector's group first.
        components: the installed components of every group.
        last_result: how the last update ended; ``None`` if the log records none.
        trust_root_version: the version of the ECU's trust root.
        log_head: the newest entry of the event log.
        software_id: the vehicle's software identification number (RXSWIN; :mod:`sdv.ota.agent.software_id`),
            left out of the signed form when absent, so reports without it keep their bytes.
    """

    model_config = _STRICT

    type: Literal["sdv-ota/ecu-report/v1"]
    ecu_id: Name
    hardware_id: HardwareId
    nonce: str = Field(pattern=NONCE_PATTERN)
    time: UtcTime
    state: AgentState
    active_slot: SlotName
    installed: BundleSummary | None
    groups: list[ReportedGroup] = Field(max_length=256)
    components: list[ReportedComponent] = Field(max_length=4096)
    last_result: ReportedResult | None
    trust_root_version: int = Field(ge=1)
    log_head: ReportedLogHead | None
    software_id: str | None = Field(default=None, max_length=128)

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("software_id") is None:
            data.pop("software_id", None)
        return data


class SignedEcuReport(BaseModel):
    """A report with the ECU's signature, as written to a report file.

    Attributes:
        signed: the report.
        signatures: the ECU key's signature (one).
    """

    model_config = _STRICT

    signed: EcuReport
    signatures: list[Signature] = Field(min_length=1, max_length=8)


def new_nonce() -> str:
    """A fresh random nonce for one report request (the server keeps it until the answer arrives)."""
    return secrets.token_hex(_NONCE_BYTES)


def check_nonce(nonce: str) -> str:
    """Refuse a nonce that is missing, too long or not lowercase hex.

    Raises:
        NonceFormatError: naming what was expected.
    """
    if not nonce:
        raise NonceFormatError("the report request carries no nonce; send 32 to 128 lowercase hex digits")
    if not _NONCE_RE.match(nonce):
        shown = nonce[:40] + ("..." if len(nonce) > 40 else "")
        raise NonceFormatError(
            f"nonce {shown!r} ({len(nonce)} characters) is not 32 to 128 lowercase hex digits"
        )
    return nonce


def _message(report: EcuReport) -> bytes:
    return signing_input(REPORT_TYPE, canonical_bytes(report))


def sign_report(report: EcuReport, key: PrivateKey) -> SignedEcuReport:
    """Sign a report with the ECU's key."""
    return SignedEcuReport(signed=report, signatures=[key.sign(_message(report))])


def parse_signed_report(data: bytes, source: str, limits: OtaLimits = DEFAULT_LIMITS) -> SignedEcuReport:
    """Parse a report file's bytes.

    Raises:
        SizeLimitError: if longer than ``limits.max_report_bytes``.
        BundleFormatError: if it does not validate or is not canonical.
    """
    if len(data) > limits.max_report_bytes:
        raise SizeLimitError(f"{source}: report is {len(data)} bytes, limit is {limits.max_report_bytes}")
    try:
        return parse_canonical(SignedEcuReport, data, f"{source}: report")
    except ValueError as error:
        raise BundleFormatError(str(error)) from error


def verify_report(
    signed: SignedEcuReport,
    ecu_key: PublicKey,
    *,
    nonce: str,
    source: str,
    expected_counter: int | None = None,
) -> EcuReport:
    """Check a report's signature, nonce and (optionally) the installed release counter.

    Args:
        signed: the parsed report.
        ecu_key: the ECU's public key, from provisioning.
        nonce: the nonce the server sent.
        source: names the report in messages.
        expected_counter: the release counter the ECU's installed bundle should have, if known.

    Raises:
        BadSignatureError, ThresholdNotMetError: if the ECU's key did not sign exactly this report.
        NonceMismatchError: if the report answers another request.
        RollbackError: if the ECU runs another release than expected.
    """
    report = signed.signed
    tally = tally_signatures(
        REPORT_TYPE, canonical_bytes(report), signed.signatures, {ecu_key.keyid: ecu_key}
    )
    check_threshold(
        tally,
        threshold=1,
        what=f"{source}: report of ECU {report.ecu_id} (ECU key {ecu_key.keyid[:16]})",
        role="ecu",
        strict=True,
    )
    if not hmac.compare_digest(report.nonce.encode(), nonce.encode()):
        raise NonceMismatchError(
            f"{source}: report of ECU {report.ecu_id} answers nonce {report.nonce}, the request sent {nonce}"
        )
    installed = report.installed.release_counter if report.installed is not None else 0
    if expected_counter is not None and installed != expected_counter:
        raise RollbackError(
            f"{source}: ECU {report.ecu_id} runs release counter {installed}, expected {expected_counter}"
        )
    return report
