"""Settings of the gRPC edge, in one model with documented defaults."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ApiConfig"]


class ApiConfig(BaseModel):
    """Limits and timeouts of the gRPC server.

    The broker's own limits (paths per request, path length, open subscriptions) are in
    :class:`sdv.broker.BrokerConfig`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_buffer_size: int = Field(
        1000,
        ge=0,
        description="largest accepted Subscribe buffer_size (as KUKSA); larger is INVALID_ARGUMENT",
    )
    provider_timeout_s: float = Field(
        5.0, gt=0, description="how long an actuation waits for a stream provider's answer"
    )
    grace_period_s: float = Field(2.0, ge=0, description="time running calls get to finish on stop")
    max_message_bytes: int = Field(4 * 1024 * 1024, ge=1024, description="largest gRPC message received")
