"""The limits of the VISS server, in one model with documented defaults (``sdv serve --viss-limits FILE``).

The broker's own limits (paths per request, subscriptions per client and in all, the actuation timeout) apply to
VISS requests as to gRPC calls; these bound what only the VISS transport holds: messages, subscriptions per
connection and what waits to be sent to a client.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_VISS_PORT", "VissLimits"]

DEFAULT_VISS_PORT = 8090
"""The port ``sdv serve --viss`` listens on without ``--viss-port`` (the KUKSA and W3C examples use it)."""


class VissLimits(BaseModel):
    """What one VISS client may hold of the server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_message_bytes: int = Field(
        64 * 1024,
        ge=256,
        description="largest WebSocket message or HTTP request body accepted, in bytes; a longer WebSocket "
        "message closes the connection with code 1009 (message too big), a longer HTTP body is answered 400",
    )
    max_subscriptions_per_connection: int = Field(
        100, ge=1, description="subscriptions one WebSocket connection may hold open at once"
    )
    send_queue_messages: int = Field(
        64,
        ge=1,
        description="messages waiting to be written to one WebSocket client; while it is full that client's "
        "subscriptions keep only the latest value of each signal in the broker, and its requests wait",
    )
    send_timeout_s: float = Field(
        10.0,
        gt=0,
        description="how long writing one message to a client may take; a client that reads nothing for that "
        "long is disconnected (close code 1008), so that it holds no memory of the server",
    )
    min_period_ms: int = Field(
        10, ge=1, description="the shortest period a timebased subscription may ask for, in milliseconds"
    )
    max_period_ms: int = Field(
        3_600_000,
        ge=1,
        description="the longest period a timebased subscription may ask for, in milliseconds",
    )
    grace_period_s: float = Field(
        2.0, ge=0, description="time the connections get to close on stop before they are cut"
    )
