"""ECU install reports: the ECU's signed statement of what it runs, answering a server's nonce.

After installing (or at any time the server asks), an ECU reports its installed bundle: name, version, release
counter, the hashes of its payloads, the time, and the nonce the server sent with its request. The ECU signs
the report with its own key, which the server knows from the vehicle's provisioning. This is Uptane's ECU
version report (Uptane Standard, "ECU version report"): the signature shows which ECU speaks, the nonce shows
that the report answers this request and is not a replay of an older one.

Invariants:

* a report is canonical JSON (:mod:`sdv.ota.canonical`) and its signature covers ``signing_input`` with the
  kind ``sdv-ota/report/v1``, so it can never pass for a manifest or trust root signature, nor they for it;
* :func:`verify_report` checks in a fixed order: the signature by the expected ECU key, then the nonce
  (compared in constant time), then an optionally expected release counter.

This module performs no I/O.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from sdv.ota.canonical import UtcTime, canonical_bytes, parse_canonical, signing_input
from sdv.ota.config import DEFAULT_LIMITS, OtaLimits
from sdv.ota.errors import BundleFormatError, NonceMismatchError, RollbackError, SizeLimitError
from sdv.ota.keys import PrivateKey, PublicKey, Signature
from sdv.ota.manifest import HardwareId, Manifest, Name
from sdv.ota.trust import check_threshold, tally_signatures

__all__ = [
    "NONCE_PATTERN",
    "REPORT_TYPE",
    "InstallReport",
    "ReportedPayload",
    "SignedReport",
    "create_report",
    "new_nonce",
    "parse_signed_report",
    "verify_report",
]

REPORT_TYPE: Final = "sdv-ota/report/v1"
"""The ``type`` of an install report, also the label of its signature."""

NONCE_PATTERN = r"^[0-9a-f]{32,128}$"
"""A nonce: 16 to 64 random bytes in lowercase hex."""

_NONCE_BYTES = 16
_STRICT = ConfigDict(extra="forbid", frozen=True)


class ReportedPayload(BaseModel):
    """One installed payload.

    Attributes:
        name: the payload's name in the bundle.
        size: its length.
        sha256: its SHA-256 in lowercase hex.
    """

    model_config = _STRICT

    name: Name
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class InstallReport(BaseModel):
    """What one ECU runs, as it reports it.

    Attributes:
        type: the document type, ``"sdv-ota/report/v1"``.
        ecu_id: the ECU's own identity (serial number).
        hardware_id: the ECU's hardware id.
        bundle: name of the installed bundle.
        version: its version.
        release_counter: its release counter.
        payloads: the installed payloads.
        time: when the report was made (the ECU's trusted time).
        nonce: the nonce of the server's request.
    """

    model_config = _STRICT

    type: Literal["sdv-ota/report/v1"]
    ecu_id: Name
    hardware_id: HardwareId
    bundle: Name
    version: str = Field(max_length=256)
    release_counter: int = Field(ge=0)
    payloads: list[ReportedPayload] = Field(max_length=4096)
    time: UtcTime
    nonce: str = Field(pattern=NONCE_PATTERN)


class SignedReport(BaseModel):
    """A report with the ECU's signature.

    Attributes:
        signed: the report.
        signatures: the ECU key's signature (one).
    """

    model_config = _STRICT

    signed: InstallReport
    signatures: list[Signature] = Field(min_length=1, max_length=8)


def new_nonce() -> str:
    """A fresh random nonce for one report request (the server keeps it until the answer arrives)."""
    return secrets.token_hex(_NONCE_BYTES)


def create_report(
    manifest: Manifest, *, ecu_id: str, hardware_id: str, nonce: str, time: datetime, key: PrivateKey
) -> SignedReport:
    """Make and sign the report of an installed bundle.

    Args:
        manifest: the installed bundle's manifest.
        ecu_id: the ECU's identity.
        hardware_id: the ECU's hardware id.
        nonce: the server's nonce.
        time: the ECU's trusted time.
        key: the ECU's private key.
    """
    report = InstallReport(
        type=REPORT_TYPE,
        ecu_id=ecu_id,
        hardware_id=hardware_id,
        bundle=manifest.name,
        version=manifest.version,
        release_counter=manifest.release_counter,
        payloads=[
            ReportedPayload(name=payload.name, size=payload.size, sha256=payload.sha256)
            for payload in manifest.payloads
        ],
        time=time.replace(microsecond=0),
        nonce=nonce,
    )
    return SignedReport(signed=report, signatures=[key.sign(_message(report))])


def _message(report: InstallReport) -> bytes:
    return signing_input(REPORT_TYPE, canonical_bytes(report))


def parse_signed_report(data: bytes, source: str, limits: OtaLimits = DEFAULT_LIMITS) -> SignedReport:
    """Parse a report file's bytes.

    Raises:
        SizeLimitError: if longer than ``limits.max_report_bytes``.
        BundleFormatError: if it does not validate or is not canonical.
    """
    if len(data) > limits.max_report_bytes:
        raise SizeLimitError(f"{source}: report is {len(data)} bytes, limit is {limits.max_report_bytes}")
    try:
        return parse_canonical(SignedReport, data, f"{source}: report")
    except ValueError as error:
        raise BundleFormatError(str(error)) from error


def verify_report(
    signed: SignedReport,
    ecu_key: PublicKey,
    *,
    nonce: str,
    source: str,
    expected_counter: int | None = None,
) -> InstallReport:
    """Check a report's signature, nonce and (optionally) release counter.

    Args:
        signed: the parsed report.
        ecu_key: the ECU's public key, from provisioning.
        nonce: the nonce the server sent.
        source: names the report in messages.
        expected_counter: the release counter the ECU should now run, if known.

    Raises:
        BadSignatureError, UnknownKeyError, ThresholdNotMetError: if the ECU's key did not sign this report.
        NonceMismatchError: if the report answers another request.
        RollbackError: if the ECU runs another release than expected.
    """
    report = signed.signed
    tally = tally_signatures(
        REPORT_TYPE, canonical_bytes(report), signed.signatures, {ecu_key.keyid: ecu_key}
    )
    check_threshold(
        tally, threshold=1, what=f"{source}: report of ECU {report.ecu_id}", role="ecu", strict=True
    )
    if not hmac.compare_digest(report.nonce, nonce):
        raise NonceMismatchError(
            f"{source}: report of ECU {report.ecu_id} answers nonce {report.nonce}, the request sent {nonce}"
        )
    if expected_counter is not None and report.release_counter != expected_counter:
        raise RollbackError(
            f"{source}: ECU {report.ecu_id} runs release counter {report.release_counter}, "
            f"expected {expected_counter}"
        )
    return report
