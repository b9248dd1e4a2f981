"""The project's exception tree.

Every error the library raises on purpose derives from :class:`SdvError`, with one base per domain so that
callers can catch a whole domain (``except sdv.HalError``) or one precise condition. Where a standard-library
type fits, the error subclasses it too (an out-of-range value is also a ``ValueError``), so generic handlers keep
working. Third-party exceptions are translated at the boundary with ``raise ... from``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AccessDenied",
    "ActuationError",
    "AlreadyProvidedError",
    "AuthenticationError",
    "BindError",
    "BusError",
    "CatalogueError",
    "ConfigError",
    "DbcError",
    "FileWriteError",
    "FrameError",
    "HalError",
    "LimitExceededError",
    "NoProviderError",
    "OtaError",
    "OutcomeUnknownError",
    "OwnerUnreachableError",
    "Problem",
    "ProfileError",
    "ProviderTimeoutError",
    "ReadOnlyError",
    "ScopeError",
    "SdvError",
    "SecurityConfigError",
    "ServerUnreachableError",
    "SignalError",
    "UnknownSignalError",
    "UnsupportedRequestError",
    "ValueOutOfRangeError",
    "VerificationError",
    "WrongServiceError",
    "name_some",
]


class SdvError(Exception):
    """Root of every error raised by sdv."""


@dataclass(frozen=True)
class Problem:
    """One located problem in an input file.

    Attributes:
        file: the file the problem is in (or a label such as ``<string>``).
        location: where in the file: ``line 12`` for DBC text, a key path such as ``signals[3].source.message``
            for a profile.
        message: what is wrong and what was expected.
    """

    file: str
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.location}: {self.message}"


class _ProblemsError(SdvError):
    """An error that carries every problem found, not only the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''}:\n{lines}")


class DbcError(_ProblemsError):
    """A DBC file that cannot be loaded: names the file, the line and what was expected."""


class ProfileError(_ProblemsError, ValueError):
    """A vehicle profile that does not validate: lists every problem with its file and key path."""


class CatalogueError(_ProblemsError, ValueError):
    """A VSS catalogue file (vss-tools JSON) that cannot be loaded: each problem names the file, the JSON path
    (``Vehicle.children.Cabin``) or line and column, and what was expected."""


class ConfigError(_ProblemsError, ValueError):
    """A settings file (limits, for example) that does not validate: lists every problem with its key path."""


class HalError(SdvError):
    """Base of the hardware abstraction layer's runtime errors."""


class FrameError(HalError, ValueError):
    """A CAN frame that cannot be decoded (unknown id, wrong length, value outside the DBC range)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class BusError(HalError):
    """A bus that cannot be opened, read or written right now (interface down, device unplugged, recording
    missing or unreadable). The HAL closes such a bus and reopens it with backoff; errors that can never pass
    (an unknown python-can interface, invalid bus options) are plain :class:`HalError`."""


class SignalError(SdvError):
    """A request about a signal that cannot be served as asked: what a caller of the broker, the gRPC API or the
    SDK catches. It is no HAL error: a mistyped path is the caller's, not the CAN stack's."""


class UnknownSignalError(SignalError, KeyError):
    """A path or id that names no signal (or one the caller may not read: the two look the same)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ReadOnlyError(SignalError):
    """A write to a sensor or attribute, or to an actuator its provider holds read-only."""


class ValueOutOfRangeError(SignalError, ValueError):
    """A value of the wrong type, outside min/max or outside the allowed values."""


class NoProviderError(SignalError):
    """No provider currently owns the actuator (gRPC ``UNAVAILABLE``)."""


class AlreadyProvidedError(SignalError):
    """Another provider already owns the actuator or signal (gRPC ``ALREADY_EXISTS``)."""


class OwnerUnreachableError(NoProviderError):
    """The ECU owning the actuator is not reachable over the federation (gRPC ``UNAVAILABLE``)."""


class ActuationError(SignalError):
    """An actuation its provider accepted but could not carry out (the HAL: the frame was not sent)."""


class ProviderTimeoutError(ActuationError, TimeoutError):
    """A provider did not answer an actuation within ``Limits.actuation_timeout_s`` (gRPC ``DEADLINE_EXCEEDED``)."""


class OutcomeUnknownError(ActuationError):
    """An actuation sent to the owning ECU whose reply never came: it may or may not have been carried out (gRPC
    ``DEADLINE_EXCEEDED``)."""


class ServerUnreachableError(SdvError, ConnectionError):
    """The server cannot be reached (not running, wrong address, or the connection broke)."""


class WrongServiceError(SdvError):
    """The address answers, but with another service (``UNIMPLEMENTED`` for the first call): an update agent
    where a signal server was expected, or the other way round."""


class UnsupportedRequestError(SdvError):
    """A well-formed request for something this server does not offer (gRPC ``UNIMPLEMENTED``)."""


class LimitExceededError(SdvError):
    """A request beyond a configured limit (gRPC ``RESOURCE_EXHAUSTED``)."""


class SecurityConfigError(SdvError, ValueError):
    """Security settings that cannot be used or are not allowed for the address (names the file or flag)."""


class FileWriteError(SdvError, OSError):
    """A file that cannot be written or replaced (a missing folder, no permission, a full disk)."""


class BindError(SdvError, OSError):
    """The server cannot listen on the requested address and port (in use, or not an address of this host)."""


class ScopeError(SdvError, ValueError):
    """A ``scope`` claim that does not follow the grammar; names the offending entry."""


class AccessDenied(SdvError, PermissionError):
    """A request the caller's credentials do not allow."""


class AuthenticationError(SdvError):
    """Credentials that are missing, malformed, expired or not signed by a trusted key (gRPC ``UNAUTHENTICATED``)."""


class OtaError(SdvError):
    """Base of the over-the-air update errors."""


class VerificationError(OtaError):
    """A bundle or trust root that fails verification."""


def name_some(names: Sequence[str], shown: int = 5) -> str:
    """The first ``shown`` of ``names`` and how many more, for a message about many things.

    ``name_some(["A", "B", "C"], 2)`` is ``"A, B and 1 more"``: an error about a batch of 1,000 signals names a few
    and stays short enough for a status message.
    """
    if len(names) <= shown:
        return ", ".join(names)
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"
