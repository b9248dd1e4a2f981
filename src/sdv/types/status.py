"""The status of a signal's value."""

from __future__ import annotations

import enum

__all__ = ["Status"]


class Status(enum.Enum):
    """Whether a signal's value can be trusted right now."""

    VALID = "valid"
    STALE = "stale"
    """Freshness monitoring: the message was not received within its timeout."""
    E2E_FAILED = "e2e_failed"
    """The message's counter or checksum check failed."""
    NOT_AVAILABLE = "not_available"
    """No value has been received (or the bus is down)."""
