"""Runtime settings of the HAL, in one model with documented defaults.

The vehicle profile says *what* the buses are; :class:`HalConfig` says how the HAL runs them: how long a reader
waits for frames, how often freshness is judged, how a bus that failed is reopened (:class:`BusReopenPolicy`) and
in how many processes the buses are decoded. A profile carries one in its ``hal:`` section
(:class:`~sdv.hal.profile.ProfileConfig`); a HAL built from the profile without a config of its own runs with it.
"""

from __future__ import annotations

import os
import random
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["BusReopenPolicy", "HalConfig", "decode_worker_count"]


class BusReopenPolicy(BaseModel):
    """Exponential backoff between attempts to reopen a bus that failed.

    The n-th attempt after a failure (n = 0, 1, ...) waits ``min(initial_delay_s * factor**n, max_delay_s)``
    seconds, multiplied by a random factor in ``[1 - jitter, 1 + jitter]`` so that buses (and ECUs) that failed
    together do not retry in lockstep.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_delay_s: float = Field(0.5, gt=0, description="wait before the first attempt to reopen")
    factor: float = Field(2.0, ge=1, description="growth of the wait after each failed attempt")
    max_delay_s: float = Field(30.0, gt=0, description="longest wait between two attempts")
    jitter: float = Field(0.1, ge=0, le=1, description="random spread of each wait, as a fraction of it")

    @model_validator(mode="after")
    def _ordered(self) -> BusReopenPolicy:
        if self.max_delay_s < self.initial_delay_s:
            raise ValueError("max_delay_s must not be below initial_delay_s")
        return self

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before reopening attempt ``attempt`` (0 for the first after a failure)."""
        # The exponent is bounded so that a bus down for days cannot overflow the float.
        base = min(self.initial_delay_s * self.factor ** min(attempt, 64), self.max_delay_s)
        if not self.jitter:
            return base
        return base * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)


class HalConfig(BaseModel):
    """How the HAL runs its buses."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    receive_timeout_s: float = Field(
        0.05, gt=0, description="longest wait of a reader for frames (also how fast it notices a stop)"
    )
    batch_window_s: float = Field(
        0.002,
        ge=0,
        le=1,
        description="how long a reader keeps collecting frames after the first of a batch: a few ms of frames are "
        "decoded and published together, which is what keeps the cost per frame low at real-time rates "
        "(0: only what already arrived)",
    )
    freshness_period_s: float = Field(0.02, ge=0, description="time between two freshness checks of a bus")
    reconnect: BusReopenPolicy = Field(default_factory=BusReopenPolicy)
    log_interval_s: float = Field(
        60.0,
        ge=0,
        description="a bus going down is logged as a warning at most once per this interval; more often at DEBUG",
    )
    decode_workers: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        0,
        description="worker processes that receive and decode the buses (:mod:`sdv.hal.workers`), the buses "
        "shared among them in profile order; 0: every bus in this process (the default); auto: one per core "
        "but one (the publishing process keeps a core), at most one per bus, none for one bus or one core",
    )

    @field_validator("decode_workers", mode="before")
    @classmethod
    def _worker_setting(cls, setting: object) -> object:
        # One message for both kinds of value, instead of one per member of the union; and YAML's true is no count.
        if setting == "auto" or (isinstance(setting, int) and not isinstance(setting, bool) and setting >= 0):
            return setting
        raise ValueError("expected a number of processes (0 or more) or auto")


def decode_worker_count(setting: int | Literal["auto"], buses: int, cores: int | None = None) -> int:
    """How many decode worker processes a ``decode_workers`` setting means for ``buses`` buses (0: none).

    ``auto`` uses ``cores - 1`` workers (at most one per bus) on a machine with more than one core and a profile
    with more than one bus; a number is taken as it is, at most one worker per bus.
    """
    if setting == "auto":
        cores = cores if cores is not None else (os.cpu_count() or 1)
        if buses < 2 or cores < 2:
            return 0
        return min(buses, cores - 1)
    return min(setting, buses)
