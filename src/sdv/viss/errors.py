"""VISS v2 error objects for the project's errors: numbers and reasons from the one error contract (docs/api.md, VISS).

VISS answers a refused request with ``error: {number, reason, message}``, the number an HTTP status code (over
HTTP it is the response status too). Invariants:

* The numbers are the VISS column of the project's one error contract, :data:`sdv.api.errors.ERROR_CONTRACT`,
  shared with gRPC: ordered from the most to the least specific class, the first match wins; every
  :class:`~sdv.errors.SdvError` has a row (the last one).
* A signal the caller may not read is refused as one that does not exist (404 ``unavailable_data``), with a
  message that depends only on the path asked for: the answer cannot be used to list the catalogue. A caller who
  may read a signal but not set it learns why (403 ``forbidden_request``).
* A refused token is 401 with the reason VISS names for what was wrong (missing, expired, invalid).
* Every message is bounded (:data:`MAX_ERROR_MESSAGE_CHARACTERS`), so that an answer never grows with the input.
"""

from __future__ import annotations

from dataclasses import dataclass

from sdv.api.errors import ERROR_CONTRACT
from sdv.broker.access import Access, Action
from sdv.errors import AccessDenied, AuthenticationError, SdvError

__all__ = ["MAX_ERROR_MESSAGE_CHARACTERS", "VISS_ERRORS", "VissError", "missing_token", "viss_error"]

MAX_ERROR_MESSAGE_CHARACTERS = 500


@dataclass(frozen=True)
class VissError:
    """A VISS error object: ``number`` (an HTTP status), ``reason`` (VISS's word for it) and ``message``."""

    number: int
    reason: str
    message: str

    def as_json(self) -> dict[str, str]:
        """The ``error`` member of a VISS response (the number as a string, as VISS writes it)."""
        return {"number": str(self.number), "reason": self.reason, "message": self.message}


VISS_ERRORS: tuple[tuple[type[SdvError], int, str], ...] = tuple(
    (row.error, *row.viss) for row in ERROR_CONTRACT if row.viss is not None
)
"""The VISS column of the project's one error contract (:data:`sdv.api.errors.ERROR_CONTRACT`)."""


def _bounded(message: str) -> str:
    if len(message) <= MAX_ERROR_MESSAGE_CHARACTERS:
        return message
    cut = f" ... ({len(message) - MAX_ERROR_MESSAGE_CHARACTERS} more characters)"
    return message[:MAX_ERROR_MESSAGE_CHARACTERS] + cut


def viss_error(error: SdvError, access: Access, path: str = "") -> VissError:
    """The VISS error of a refused request.

    Args:
        error: what the broker, the token check or the request parser raised.
        access: the caller's rights (to answer a forbidden signal as an unknown one).
        path: the path the request named, if any.
    """
    if isinstance(error, AccessDenied) and path and not access.allows(Action.READ, path):
        return VissError(
            404, "unavailable_data", _bounded(f"no signal {path!r} among those this client may read")
        )
    if isinstance(error, AuthenticationError):
        text = str(error)
        reason = "expired_token" if text == "the token has expired" else "invalid_token"
        return VissError(401, reason, _bounded(text))
    for error_type, number, reason in VISS_ERRORS:
        if isinstance(error, error_type):
            return VissError(number, reason, _bounded(str(error)))
    return VissError(
        503, "service_unavailable", _bounded(str(error))
    )  # unreachable: SdvError is the last row


def missing_token() -> VissError:
    """The refusal of a request without a token on a server that checks them."""
    return VissError(
        401,
        "missing_token",
        "this server requires a token: the 'authorization' member of the request (WebSocket) or the "
        "Authorization header (HTTP)",
    )
