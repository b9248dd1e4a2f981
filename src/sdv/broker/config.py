"""The broker's limits, in one model with documented defaults."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BrokerConfig"]


class BrokerConfig(BaseModel):
    """Limits that keep one client from exhausting the broker.

    A request beyond a limit is refused with :class:`sdv.errors.LimitExceededError` (gRPC ``RESOURCE_EXHAUSTED``)
    or, for malformed requests, :class:`sdv.errors.ValueOutOfRangeError` (``INVALID_ARGUMENT``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_paths_per_request: int = Field(
        1000, ge=1, description="signals named in one get, subscribe or actuate"
    )
    max_path_length: int = Field(1000, ge=1, description="characters in one signal path (as KUKSA)")
    max_subscriptions: int = Field(10_000, ge=1, description="open subscriptions in total")
