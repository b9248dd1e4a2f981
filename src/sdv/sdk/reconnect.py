"""How a subscription waits between reconnection attempts: capped exponential backoff with jitter.

The policy is pure (no clock, no sleep): it answers how long the n-th wait is, and the subscription sleeps. Jitter
spreads the attempts of many clients that lost the same server at the same moment, so a restarted server is not
hit by all of them at once.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ReconnectPolicy"]


class ReconnectPolicy(BaseModel):
    """Reconnection of subscriptions after the connection dropped (server restart, network loss).

    The n-th wait (from 0) is ``min(max_delay, initial_delay * multiplier**n)``, scaled by a random factor in
    ``[1 - jitter, 1 + jitter]`` and capped at ``max_delay`` again; a batch received resets n to 0.

    Attributes:
        enabled: reconnect at all; without it a dropped connection ends the subscription with
            :class:`~sdv.client.ServerUnreachableError`.
        initial_delay: seconds before the first attempt (default 0.5).
        max_delay: the longest wait in seconds (default 30).
        multiplier: growth of the wait per failed attempt (default 2).
        jitter: relative random spread of each wait, 0 to 1 (default 0.2).
        max_attempts: attempts in a row before giving up with ``ServerUnreachableError``; None: never give up.
    """

    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    initial_delay: float = Field(default=0.5, gt=0)
    max_delay: float = Field(default=30.0, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    jitter: float = Field(default=0.2, ge=0, le=1)
    max_attempts: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _delays_in_order(self) -> ReconnectPolicy:
        if self.initial_delay > self.max_delay:
            raise ValueError(f"initial_delay {self.initial_delay:g} is above max_delay {self.max_delay:g}")
        return self

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt ``attempt`` (0 for the first), never more than ``max_delay``."""
        # Cap the exponent first: multiplier**attempt overflows a float after about a thousand attempts.
        base = self.initial_delay * self.multiplier ** min(attempt, 64)
        spread = 1.0 + self.jitter * (2.0 * (rng or random).random() - 1.0)
        return min(self.max_delay, min(self.max_delay, base) * spread)

    def gives_up_after(self, failed_attempts: int) -> bool:
        """Whether to stop after ``failed_attempts`` attempts in a row failed."""
        return not self.enabled or (self.max_attempts is not None and failed_attempts >= self.max_attempts)
