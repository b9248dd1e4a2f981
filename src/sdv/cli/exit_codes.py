"""The exit codes of every ``sdv`` command, and which error ends a command with which (docs/cli.md).

Invariants:

* ``0`` done; ``1`` the request was refused or failed (an unknown signal, a value or a bundle refused, access
  denied, an actuation not carried out, an update agent in the wrong state); ``2`` the command could not run as
  given (a usage error, a missing or malformed input file, a port in use); ``3`` the server cannot be talked to
  (not reachable, or another service answers at that address). A script tells "fix the command" (2) from "the
  vehicle said no" (1) from "the vehicle is not there" (3).
* The mapping follows the project's exception tree: a new error class gets its code from its base.
"""

from __future__ import annotations

from sdv import errors
from sdv.client.errors import ServerUnreachableError, WrongServiceError
from sdv.ota import errors as ota_errors

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_UNREACHABLE", "EXIT_USAGE", "exit_code"]

EXIT_OK = 0
"""The command did what it was asked."""
EXIT_FAILED = 1
"""The request was refused or failed; the reason is on stderr."""
EXIT_USAGE = 2
"""The command could not run as given: arguments, input files, configuration, a port in use."""
EXIT_UNREACHABLE = 3
"""The server cannot be reached, or the address serves another service."""

# A trust file is the ECU's own configuration: malformed, the command cannot run (docs/ota.md), unlike a bundle
# or a new trust root that fails verification, which is refused.
_USAGE: tuple[type[errors.SdvError], ...] = (ota_errors.TrustRootFormatError,)
_UNREACHABLE: tuple[type[errors.SdvError], ...] = (ServerUnreachableError, WrongServiceError)
# What the server, the verifier or the agent answered "no" to.
_FAILED: tuple[type[errors.SdvError], ...] = (
    errors.SignalError,  # unknown signal, value refused, read-only, no provider, actuation not carried out
    errors.AccessDenied,
    errors.AuthenticationError,
    errors.LimitExceededError,
    errors.UnsupportedRequestError,
    errors.VerificationError,
    ota_errors.AgentStateError,
    ota_errors.InsufficientSpaceError,
    ota_errors.OperationCancelledError,
    ota_errors.TransferOffsetError,
    ota_errors.TransferStalledError,
)


def exit_code(error: errors.SdvError) -> int:
    """The exit code a command that ended with ``error`` returns."""
    if isinstance(error, _USAGE):
        return EXIT_USAGE
    if isinstance(error, _UNREACHABLE):
        return EXIT_UNREACHABLE
    if isinstance(error, _FAILED):
        return EXIT_FAILED
    return EXIT_USAGE
