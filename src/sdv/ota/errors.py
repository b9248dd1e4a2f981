"""Specific errors of the OTA layer.

Every failure the verifier can report has its own class, so that an agent can react to the precise reason
(log a rollback attempt, ask the server for a fresh bundle after an expiry, ...) and tests can assert on it.
All derive from :class:`sdv.errors.VerificationError` (a bundle or trust root refused) or
:class:`sdv.errors.OtaError` (a problem of the tooling, such as an unreadable key file). Messages name the
thing and the place: the payload, the archive entry, the key id, and the expected against the actual value.
"""

from __future__ import annotations

from sdv.errors import ConfigError, OtaError, VerificationError

__all__ = [
    "AgentConfigError",
    "AgentStateError",
    "ArchiveFormatError",
    "BadSignatureError",
    "BadSlotError",
    "BootSelectorError",
    "BundleFormatError",
    "CompressionFormatError",
    "ConsentError",
    "EventLogError",
    "ExpiredError",
    "FleetServerError",
    "HardwareIdMismatchError",
    "HashMismatchError",
    "IllegalTransitionError",
    "IndexFormatError",
    "InsufficientEnergyError",
    "InsufficientSpaceError",
    "KeyFormatError",
    "LengthMismatchError",
    "NonceFormatError",
    "NonceMismatchError",
    "NoticeFormatError",
    "OperationCancelledError",
    "OtaError",
    "PreconditionSyntaxError",
    "PreconditionsUnmetError",
    "RollbackError",
    "RotationError",
    "SizeLimitError",
    "SlotError",
    "StateDirectoryBusyError",
    "ThresholdNotMetError",
    "TransferInProgressError",
    "TransferOffsetError",
    "TransferStalledError",
    "TrustRootFormatError",
    "UnknownKeyError",
    "UnknownNoticeError",
    "UnknownSlotError",
    "UnsafeArchiveEntryError",
    "VerificationError",
]


class KeyFormatError(OtaError, ValueError):
    """A key file or key record that cannot be loaded (wrong encoding, unsupported algorithm or curve)."""


class BundleFormatError(VerificationError, ValueError):
    """A bundle whose container or manifest does not follow ``ota/bundle-format.md``."""


class TrustRootFormatError(VerificationError, ValueError):
    """A trust root file that does not follow the trust root format."""


class SizeLimitError(VerificationError):
    """Data larger than a configured limit (Uptane "endless data" attack): names the item, limit and size."""


class ThresholdNotMetError(VerificationError):
    """Fewer distinct valid signatures of the required role than its threshold."""


class BadSignatureError(VerificationError):
    """A signature attributed to a trusted key that does not verify: the signed bytes were altered."""


class UnknownKeyError(VerificationError):
    """A signature by a key the trust root does not list for the role (strict signature policy)."""


class ExpiredError(VerificationError):
    """Metadata whose expiry lies before the trusted time (Uptane "freeze" attack)."""


class HardwareIdMismatchError(VerificationError):
    """A bundle that does not list the ECU's hardware id (Uptane "mix-and-match" on the wrong ECU)."""


class RollbackError(VerificationError):
    """A release counter not strictly above the installed one, or a trust root version going backwards."""


class LengthMismatchError(VerificationError):
    """A payload or bundle whose length differs from the signed manifest (truncated or extended data)."""


class HashMismatchError(VerificationError):
    """A payload whose SHA-256 differs from the one in the signed manifest."""


class ArchiveFormatError(VerificationError, ValueError):
    """A file-tree payload that is not a well-formed POSIX tar archive."""


class CompressionFormatError(VerificationError, ValueError):
    """A compressed payload that is not a valid stream of its algorithm, or needs more decoder memory than allowed."""


class UnsafeArchiveEntryError(VerificationError):
    """A file-tree entry that could write outside its tree or create something other than files, dirs,
    links."""


class RotationError(VerificationError):
    """A new trust root that the current one does not authorize (version, signatures of old or new keys)."""


class NonceMismatchError(VerificationError):
    """An install report that answers another request than the one the server sent (replayed report)."""


class NonceFormatError(VerificationError, ValueError):
    """A report request whose nonce is missing, too long or not lowercase hex: the agent signs nothing."""


# -- the update agent (OTA part 2) ------------------------------------------------------------------------------


class AgentConfigError(OtaError, ConfigError):
    """An agent configuration that cannot be read or does not validate: every problem with file, line and key."""


class AgentStateError(OtaError, RuntimeError):
    """A request the update agent's current state does not allow (``activate`` before a bundle is ready...)."""


class IllegalTransitionError(AgentStateError):
    """A state change the agent's transition table does not list; a bug in the caller, never a user input."""


class BadSlotError(AgentStateError):
    """An activation that would boot a slot group's side that failed its trial and was not installed anew."""


class TransferInProgressError(AgentStateError):
    """A second transfer while one is in progress: another bundle, or a second upload of the same bundle."""


class TransferOffsetError(OtaError, ValueError):
    """An upload chunk at another offset than the agent's persisted one, past the end, or for another bundle."""


class TransferStalledError(OtaError, TimeoutError):
    """An upload that sent no data for longer than the idle timeout (Uptane's slow retrieval); it stays resumable."""


class InsufficientSpaceError(OtaError):
    """Not enough free space for a transfer or for staging: names the directory, the need and what is free."""


class OperationCancelledError(OtaError):
    """A transfer or staging that a ``cancel`` request stopped."""


class StateDirectoryBusyError(OtaError):
    """The agent's state directory is held by another running agent process."""


class SlotError(OtaError):
    """A slot that cannot be written or switched (missing device, unwritable directory)."""


class UnknownSlotError(VerificationError):
    """A bundle payload whose target names no slot of this ECU's configuration: the bundle is refused."""


class BootSelectorError(OtaError):
    """The boot selector's store cannot be read or written (``fw_printenv`` failed, malformed variables)."""


class EventLogError(OtaError):
    """An event log whose chain does not hold: names the file, the line and what was expected."""


# -- pulling updates (hawkBit DDI, a signed index) ---------------------------------------------------------------


class FleetServerError(OtaError):
    """An update server that answers what the agent cannot use (a status, a document too large or malformed, a
    download that does not honour ``Range``): names the URL and what was expected. The agent retries later."""


class IndexFormatError(VerificationError, ValueError):
    """A bundle index that does not follow the signed index format (``sdv ota index``)."""


# -- the vehicle: preconditions, energy, consent ------------------------------------------------------------------


class PreconditionSyntaxError(OtaError, ValueError):
    """A precondition (in a manifest or the agent configuration) that is not in the condition language."""


class PreconditionsUnmetError(AgentStateError):
    """The vehicle is not in the state an update step needs (a precondition unmet, or a signal unusable)."""


class InsufficientEnergyError(PreconditionsUnmetError):
    """The battery cannot supply the energy the update, its activation and a rollback need."""


class ConsentError(AgentStateError):
    """The driver declined or postponed the update, or gave no answer before the deadline."""


class UnknownNoticeError(ConsentError):
    """No notice of that id is on the board."""


class NoticeFormatError(OtaError, ValueError):
    """A notice or a decision received over the wire that is not valid."""
