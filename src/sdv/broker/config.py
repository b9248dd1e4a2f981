"""Every limit of the service surface, in one model with documented defaults.

A request beyond a limit is refused with :class:`sdv.errors.LimitExceededError` (gRPC ``RESOURCE_EXHAUSTED``)
or, for a malformed request, :class:`sdv.errors.ValueOutOfRangeError` (``INVALID_ARGUMENT``); the server keeps
serving everyone else. The broker enforces the limits on paths and subscriptions, the gRPC edge those on
messages and streams. ``sdv serve --limits FILE`` reads the model from YAML or TOML.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Limits"]


class Limits(BaseModel):
    """Limits that keep one client from exhausting (or hanging) the server, and how outside providers are treated."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_message_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="largest gRPC request message accepted, in bytes"
    )
    max_paths_per_request: int = Field(
        1000, ge=1, description="signals named in one get, subscribe or actuate request"
    )
    max_path_length: int = Field(1000, ge=1, description="characters in one signal path (as KUKSA)")
    max_subscriptions: int = Field(10_000, ge=1, description="open subscriptions, all clients together")
    max_subscriptions_per_client: int = Field(
        500,
        ge=1,
        description="open subscriptions of one client: a token's subject, or one connection without tokens",
    )
    subscription_tick_ms: float = Field(
        2.0,
        ge=0,
        le=1000,
        description="the shortest time between two responses of one subscription while changes keep coming: "
        "what arrives in between is coalesced into the next response (latest value per signal); a change after "
        "a quiet tick is sent at once, so the tick adds latency only under load; 0 sends every batch. Under load "
        "the tick lengthens up to subscription_tick_max_ms (sdv.broker.tick)",
    )
    subscription_tick_max_ms: float = Field(
        3.0,
        ge=0,
        le=1000,
        description="the longest the tick becomes while the process uses more than subscription_cpu_budget: "
        "fewer, fuller responses for at most this much more latency; equal to (or below) subscription_tick_ms, "
        "or a subscription_tick_ms of 0: the tick never changes",
    )
    subscription_cpu_budget: float = Field(
        0.25,
        gt=0,
        description="CPU of the serving process, as a fraction of one core (all its threads), above which the "
        "subscription tick lengthens step by step; it shortens again below 80 % of it",
    )
    subscription_load_window_s: float = Field(
        1.0,
        gt=0,
        le=60,
        description="the window the process's CPU is measured over for the subscription tick",
    )
    max_buffer_size: int = Field(
        1000,
        ge=0,
        description="largest Subscribe buffer_size (as KUKSA); a subscriber's buffer holds the latest value of "
        "each signal it subscribed to, so its memory is bounded by max_paths_per_request",
    )
    max_concurrent_streams: int = Field(
        100, ge=1, description="concurrent calls on one connection (the HTTP/2 setting)"
    )
    max_streams: int = Field(
        2000, ge=1, description="streaming calls (subscriptions, provider streams) open, all clients together"
    )
    max_provider_streams: int = Field(32, ge=1, description="OpenProviderStream calls open at once")
    refused_stream_drain_s: float = Field(
        0.5,
        ge=0,
        description="how long the server reads what a client-streaming call it refuses (a stream limit, a missing "
        "or bad token) is still sending before ending it (RESOURCE_EXHAUSTED, UNAUTHENTICATED), so that the "
        "refusal reaches the client intact; a pause of a tenth of it ends the reading earlier",
    )
    # --- outside providers --------------------------------------------------------------------------------
    actuation_timeout_s: float = Field(
        5.0,
        gt=0,
        description="how long an actuation waits for its provider to accept it (the HAL: the frame sent; a "
        "stream provider: its BatchActuateStreamResponse); then the caller gets DEADLINE_EXCEEDED",
    )
    max_pending_actuations: int = Field(
        1000,
        ge=1,
        description="actuation requests one stream provider has been sent and not answered (with "
        "await_provider_answer; timed-out requests count until answered, as they still wait on its stream); "
        "beyond it an actuation is refused with RESOURCE_EXHAUSTED, so a provider that stops reading holds "
        "a bounded amount of the server's memory",
    )
    await_provider_answer: bool = Field(
        True,
        description="an actuation forwarded to a stream provider returns with the provider's answer; false: "
        "once the request is queued on the provider's stream, as the KUKSA databroker does (for providers "
        "that never answer, such as kuksa-client's subscribe_target_values)",
    )
    released_values: Literal["keep", "not_available"] = Field(
        "keep",
        description="what a released signal serves once its provider's stream ended: its last value (keep, as "
        "the KUKSA databroker) or no value (not_available)",
    )
