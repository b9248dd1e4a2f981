"""Settings of the gRPC edge, in one model with documented defaults."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ApiConfig"]


class ApiConfig(BaseModel):
    """Timeouts of the gRPC server.

    Every limit (message size, paths, subscriptions, streams, the actuation timeout) is in
    :class:`sdv.broker.Limits`, the one limits model; the server reads it from its broker.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    grace_period_s: float = Field(2.0, ge=0, description="time running calls get to finish on stop")
