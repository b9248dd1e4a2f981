"""Who a VISS request comes from: its token, checked by the server's one token verifier, as rights.

The token travels in the request's ``authorization`` member (WebSocket) or the ``Authorization`` header (HTTP),
bare or as ``Bearer <jwt>``; it is verified by the same :class:`~sdv.api.tokens.TokenVerifier` as gRPC calls'
and grants the same scopes. Without token checks a request acts with every right, as one client per connection
(the peer address), so that the broker's per-client subscription limit still applies per connection.
"""

from __future__ import annotations

import dataclasses

from sdv.api.tokens import TokenVerifier
from sdv.broker.access import UNRESTRICTED, Access

__all__ = ["Authenticator"]

_BEARER = "bearer "


class Authenticator:
    """Turns a request's token into the caller's rights.

    Args:
        verifier: the server's token verifier; None serves every request with all rights.
    """

    def __init__(self, verifier: TokenVerifier | None) -> None:
        self._verifier = verifier

    @property
    def checks_tokens(self) -> bool:
        """Whether requests need a token."""
        return self._verifier is not None

    def access(self, token: str, peer: str) -> tuple[Access, float]:
        """The rights ``token`` grants and when they expire; all rights for ever without token checks.

        Raises:
            AuthenticationError: naming what is wrong with the token.
        """
        if self._verifier is None:
            return dataclasses.replace(UNRESTRICTED, subject=peer), float("inf")
        if token[: len(_BEARER)].lower() == _BEARER:
            token = token[len(_BEARER) :].strip()
        return self._verifier.verify(token)

    def open_access(self, peer: str) -> Access | None:
        """The rights of a request without a token: all of them without token checks, None otherwise."""
        if self._verifier is not None:
            return None
        return dataclasses.replace(UNRESTRICTED, subject=peer)
